"""Built-in sinks: plugins that receive every run's events (see :mod:`epochline.hookspecs`)."""
