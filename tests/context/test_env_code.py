"""init(capture_env=True) and init(snapshot_code=True) against a real git repository."""

import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

import epochline
from epochline.context import _code, _env

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]


def _python(code, cwd, store_dir, timeout):
    """Run ``code`` in a fresh interpreter (what it imports is its own) with the test's store."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "EPOCHLINE_STORE": str(store_dir)},
    )


def _git(repo, *args):
    return subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "train.py").write_text("print('train')\n")
    (repo / "README.md").write_text("# r\n")
    (repo / ".gitignore").write_text("data/\n*.log\n")
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(b"0" * 1000)
    (repo / "run.log").write_text("log\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    return repo


def test_env_record_with_git_commit_branch_and_dirty(repo, store_dir, store, monkeypatch):
    monkeypatch.chdir(repo)
    with epochline.init("env") as clean:
        pass
    (repo / "src" / "train.py").write_text("print('changed')\n")
    with epochline.init("env") as dirty:
        pass
    head = _git(repo, "rev-parse", "HEAD")
    env = store().run(clean.id).env
    assert env["git"] == {"commit": head, "branch": "main", "dirty": False}
    assert store().run(dirty.id).env["git"] == {"commit": head, "branch": "main", "dirty": True}
    assert env["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert env["cpu"]["count"] == os.cpu_count() and env["memory_bytes"] > 0
    assert env["packages"]["epochline"] == epochline.__version__
    assert env["command"]["cwd"] == str(repo)


def test_env_outside_a_repository_and_off(tmp_path, store_dir, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with epochline.init("env") as run:
        pass
    with epochline.init("env", capture_env=False) as off:
        pass
    assert store().run(run.id).env["git"] is None
    assert store().run(off.id).env is None


def test_env_never_imports_torch_and_sees_a_git_timeout(tmp_path, store_dir):
    code = textwrap.dedent("""
        import sys, epochline
        from epochline.context import _env
        run = epochline.init("env")
        run.finish()
        assert "torch" not in sys.modules, "capture_env imported torch"
        assert "numpy" not in sys.modules, "capture_env imported numpy"
        print(_env.git_state(".", timeout=0.000001))
    """)
    proc = _python(code, tmp_path, store_dir, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "git status took longer than" in proc.stdout


def test_command_line_secrets_are_redacted():
    argv = ["train.py", "--lr", "0.1", "--api-key=abc", "--password", "hunter2", "--token", "t", "x"]
    assert _env.redact_argv(argv) == [
        "train.py",
        "--lr",
        "0.1",
        "--api-key=***",
        "--password",
        "***",
        "--token",
        "***",
        "x",
    ]


def test_snapshot_code_respects_gitignore_and_leaves_the_store_out(repo, store, monkeypatch):
    monkeypatch.chdir(repo)
    (repo / "src" / "new.py").write_text("x = 1\n")  # untracked, not ignored: kept
    (repo / "debug.log").write_text("ignored\n")
    store_dir = repo / "epochline-store"  # inside the repo and not ignored
    with epochline.init("code", store=str(store_dir), snapshot_code=True, capture_env=False) as run:
        pass
    view = epochline.open(store_dir).run(run.id)
    record = view.code
    assert record["mode"] == "git" and record["artifact"] == "code.zip"
    (art,) = [a for a in view.artifacts() if a.name == "code.zip"]
    with zipfile.ZipFile(art.path) as zf:
        names = sorted(zf.namelist())
        assert zf.read("src/new.py") == b"x = 1\n"
    assert names == [".gitignore", "README.md", "src/new.py", "src/train.py"]
    assert record["files"] == 4


def test_snapshot_code_outside_git_walks_source_files_and_refuses_huge_trees(
    tmp_path, store_dir, store, monkeypatch
):
    tree = tmp_path / "proj"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "m.py").write_text("pass\n")
    (tree / "conf.yaml").write_text("a: 1\n")
    (tree / "weights.bin").write_bytes(b"1" * 10)
    (tree / ".venv" / "lib").mkdir(parents=True)
    (tree / ".venv" / "lib" / "x.py").write_text("pass\n")
    (tree / "big.py").write_text("#" * (_code.MAX_FILE_BYTES + 1))
    with epochline.init("code", snapshot_code=tree, capture_env=False) as run:
        pass
    monkeypatch.setattr(_code, "MAX_FILES", 1)
    with (
        pytest.warns(RuntimeWarning, match="code snapshot not stored: more than 1 files"),
        epochline.init("code", snapshot_code=tree, capture_env=False) as refused,
    ):
        pass
    view = store().run(run.id)
    assert view.code["mode"] == "walk" and view.code["left_out_large"] == ["big.py"]
    with zipfile.ZipFile(view.artifacts()[0].path) as zf:
        assert sorted(zf.namelist()) == ["conf.yaml", "pkg/m.py"]
    refused_view = store().run(refused.id)
    assert "more than 1 files" in refused_view.code["refused"] and refused_view.artifacts() == []
    with pytest.raises(TypeError, match="snapshot_code"):
        epochline.init("code", snapshot_code=3)


def test_env_reads_gpus_only_from_an_already_imported_torch(tmp_path, store_dir):
    code = textwrap.dedent("""
        import torch, epochline
        with epochline.init("env") as run:
            pass
        with epochline.open() as store:
            print(store.run(run.id).env["gpus"] == [] and not torch.cuda.is_available())
    """)
    proc = _python(code, tmp_path, store_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"  # a CPU build: asked, and no GPU (no error recorded)
