#!/bin/sh
# A "training script" in plain POSIX shell: it only prints lines. Any language that can print
# can be recorded the same way; nothing of epochline is needed inside the script.
#
#   epochline run --path demo/shell --name shell-demo -- sh examples/any_language.sh
#   epochline show shell-demo
#
# Lines it prints (see docs/protocols.md): Kogu JSON lines (parameters, plot, metric, tag,
# comment, upload), PROGRESS lines for the epochs (accuracies in percent), and a last
# PROGRESS line with status "completed" carrying the best accuracy.
#
# The file it uploads goes to $EPOCHLINE_RUN_TMP, a folder `epochline run` creates for the command
# and removes once it has copied the uploads (Kogu too uploads only after the script ended, so the
# script must not delete it); run alone, a new temporary folder. Never into the current directory.
set -e
OUT=${EPOCHLINE_RUN_TMP:-$(mktemp -d)}
EPOCHS=${EPOCHS:-3}
echo '{"parameters": {"lr": 0.05, "optimizer": "sgd", "layers": [64, 32], "shell": true}}'
echo '{"plot": {"type": "line", "name": "loss", "y_label": "loss", "metrics": ["train_loss", "val_loss"]}}'
echo '{"tag": "shell"}'
best=0
epoch=1
while [ "$epoch" -le "$EPOCHS" ]; do
    train_loss=$(awk "BEGIN { printf \"%.4f\", 1.0 / ($epoch + 1) }")
    val_loss=$(awk "BEGIN { printf \"%.4f\", 1.1 / ($epoch + 1) }")
    val_acc=$(awk "BEGIN { printf \"%.2f\", 60 + 10 * $epoch }")
    echo "epoch $epoch of $EPOCHS - this free text is kept in console.log"
    echo "{\"metric\": {\"iteration\": $epoch, \"metrics\": {\"train_loss\": $train_loss, \"val_loss\": $val_loss, \"val_accuracy\": $val_acc}}}"
    echo "PROGRESS: {\"epoch\": $epoch, \"total_epochs\": $EPOCHS, \"train_loss\": $train_loss, \"val_loss\": $val_loss, \"val_accuracy\": $val_acc, \"status\": \"training\"}"
    best=$val_acc
    epoch=$((epoch + 1))
done
echo "weights of epoch $EPOCHS" > "$OUT/shell-model.txt"
echo "{\"upload\": \"$OUT/shell-model.txt\"}"
echo '{"comment": "trained by a shell script"}'
echo "{\"metric\": {\"iteration\": -1, \"metrics\": {\"best_val_accuracy\": $best}}}"
echo "PROGRESS: {\"epoch\": $EPOCHS, \"total_epochs\": $EPOCHS, \"test_accuracy\": $best, \"status\": \"completed\"}"
