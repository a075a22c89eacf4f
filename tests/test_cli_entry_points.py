"""The console scripts of fairseq_gmlm/cli: declared in pyproject.toml, importable, kept out of the plugin
import that ``--user-dir fairseq_gmlm`` performs, and still run by their old ``scripts/<name>.py`` paths."""

import importlib
import os
import subprocess
import sys
import tomllib

from conftest import ROOT

CONSOLE_SCRIPTS = {
    "gmlm-prepare-data": "fairseq_gmlm.cli.prepare_data:main",
    "gmlm-distill": "fairseq_gmlm.cli.distill:main",
    "gmlm-convert-hf-t5": "fairseq_gmlm.cli.convert_hf_t5:main",
    "gmlm-sweep": "fairseq_gmlm.cli.sweep:main",
    "gmlm-diagnose": "fairseq_gmlm.cli.diagnose:main",
}
OLD_SCRIPTS = {"prepare_data": "prepare_data", "distill": "distill", "convert_hf_t5": "convert_hf_t5",
               "sweep": "sweep_decoding", "diagnose": "diagnose"}  # cli module -> scripts/<name>.py


def declared_scripts() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def test_pyproject_declares_every_console_script():
    assert {name: declared_scripts().get(name) for name in CONSOLE_SCRIPTS} == CONSOLE_SCRIPTS


def test_every_console_script_target_imports_and_is_callable():
    for name, target in declared_scripts().items():
        module_name, function = target.split(":")
        assert callable(getattr(importlib.import_module(module_name), function)), name


def test_importing_the_plugin_imports_neither_cli_nor_transformers():
    probe = ("import sys, fairseq_gmlm; "
             "print(sorted(m for m in sys.modules if m.startswith(('fairseq_gmlm.cli', 'transformers'))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_command_has_its_old_script_path():
    commands = {target.split(":")[0].rsplit(".", 1)[1] for target in CONSOLE_SCRIPTS.values()}
    assert set(OLD_SCRIPTS) == commands


def test_old_script_paths_run_the_package_commands_from_the_checkout():
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    for name in OLD_SCRIPTS.values():
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), "--help"], capture_output=True,
                                text=True, timeout=300, env=dict(environment, OMP_NUM_THREADS="1"))
        assert result.returncode == 0 and "usage:" in result.stdout, (name, result.stderr[-3000:])
