"""Dev tooling: ``make run`` (run_local.py), the Procfile's processes as argv (procfile.py), and the shell
scripts ``make test`` and the dependency audit run."""
