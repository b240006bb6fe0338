"""README's Install section, run as written (taken from README.md, so the two cannot drift apart) in a
temporary prefix, through to a phone config fetched over HTTP from the installed server, started as the
systemd unit in deploy/systemd starts it."""

from __future__ import annotations

import configparser
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO, free_port, wait_until_listening
from tests.phones import headers

MAC = "0004f2c0ffee"
UNIT = REPO / "deploy" / "systemd" / "autoprov.service"
DEFAULT_PREFIX = "/opt/autoprov"


def readme_install_block() -> str:
    """The first ``sh`` block of README's "Install and run" section."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Install and run\n", 1)[1]
    return section.split("\n## ", 1)[0].split("```sh\n", 1)[1].split("\n```", 1)[0]


def unit_service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser["Service"]


def test_readme_and_docs_name_the_installed_command():
    """Every /opt/autoprov/bin path the docs give is what README's install creates (the venv's bin/)."""
    block = readme_install_block()
    assert 'PREFIX=${PREFIX:-/opt/autoprov}' in block
    assert "python3.11" not in block
    for doc in (REPO / "docs" / "agi.md", UNIT, REPO / "README.md"):
        text = doc.read_text(encoding="utf-8")
        assert "/opt/autoprov/.venv" not in text, doc
    assert re.findall(r"/opt/autoprov/bin/autoprov", (REPO / "docs" / "agi.md").read_text())
    service = unit_service()
    assert service["User"] == "autoprov"
    assert service["Environment"] == "AUTOPROV_CONFIG=/etc/autoprov/autoprov.toml"
    assert service["ExecStart"] == f"{DEFAULT_PREFIX}/bin/autoprov serve"
    assert service["ReadWritePaths"] == "/var/lib/autoprov"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"), reason="the install runs as root")
def test_readme_install_runs_as_written_through_to_a_phone_config():
    # Not pytest's tmp_path: the service user must be able to reach the prefix (tmp_path's parents are 0700).
    root = Path(tempfile.mkdtemp(prefix="autoprov-install-"))
    root.chmod(0o755)
    user = f"aptest{uuid.uuid4().hex[:8]}"
    where = {"PREFIX": root / "opt", "ETC": root / "etc", "STATE": root / "state", "BINDIR": root / "bin"}
    (root / "bin").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    env.update({k: str(v) for k, v in where.items()}, SERVICE_USER=user)
    try:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_install_block()], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr
        state = where["STATE"]
        assert result.stdout.splitlines()[-1] == f"database SQLite {state}/autoprov.db is up to date"
        # `autoprov` on PATH is the installed one; the service's user owns the database directory.
        assert (where["BINDIR"] / "autoprov").resolve() == where["PREFIX"] / "bin" / "autoprov"
        assert pwd.getpwuid(state.stat().st_uid).pw_name == user
        assert pwd.getpwuid((state / "autoprov.db").stat().st_uid).pw_name == user
        # It holds SIP passwords: the service's user alone reads it; the configuration, root and its group.
        assert (state / "autoprov.db").stat().st_mode & 0o777 == 0o600
        toml = where["ETC"] / "autoprov.toml"
        assert toml.stat().st_mode & 0o777 == 0o640 and grp.getgrgid(toml.stat().st_gid).gr_name == user

        # As the unit runs it: its user, its AUTOPROV_CONFIG, working directory /, the command on PATH.
        service = unit_service()
        config = service["Environment"].split("=", 1)[1].replace("/etc/autoprov", str(where["ETC"]))
        run_env = dict(env, AUTOPROV_CONFIG=config, PATH=f"{where['BINDIR']}:{env.get('PATH', '/usr/bin:/bin')}")

        def as_service(*args: str) -> subprocess.CompletedProcess:
            done = subprocess.run(["autoprov", *args], user=user, group=user, extra_groups=[], cwd="/", env=run_env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            return done

        as_service("extension", "add", "1001", "--secret", "installed-secret", "--first-name", "Ada")
        as_service("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001")
        shown = as_service("config", "show").stdout
        assert f"# configuration file: {config} " in shown
        assert f"# database: SQLite {state}/autoprov.db" in shown and "(up to date)" in shown

        if shutil.which("systemd-analyze"):  # the unit as the install placed things: systemd finds nothing wrong
            unit = (UNIT.read_text().replace(DEFAULT_PREFIX, str(where["PREFIX"]))
                    .replace("/etc/autoprov", str(where["ETC"])).replace("/var/lib/autoprov", str(state))
                    .replace("=autoprov\n", f"={user}\n"))
            (root / "autoprov.service").write_text(unit)
            verified = subprocess.run(["systemd-analyze", "verify", str(root / "autoprov.service")],
                                      capture_output=True, text=True, timeout=120)
            assert verified.returncode == 0 and verified.stderr == "", verified.stderr

        port = free_port()
        command = service["ExecStart"].replace(DEFAULT_PREFIX, str(where["PREFIX"])).split()
        log = root / "serve.log"
        with open(log, "wb") as out:
            # As systemd's User= does: the user's own group too (autoprov.toml is 0640 root:<user>).
            proc = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], user=user, group=user,
                                    extra_groups=[], cwd="/", env=run_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_listening(port, proc, log.read_text, timeout=60)

            r = requests.get(f"http://127.0.0.1:{port}/prov/polycom_ip330/{MAC}-phone.cfg",
                             headers=headers("polycom_ip330"), timeout=30)
            assert r.status_code == 200, r.text
            assert 'reg.1.auth.password="installed-secret"' in r.text and 'reg.1.displayName="Ada"' in r.text
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        served = log.read_text()
        assert f"autoprov serve: configuration {config}; database SQLite {state}/autoprov.db" in served
        assert "WARNING" not in served and "Traceback" not in served
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
