"""No secret in any log line: a real server (debug logging, access log on) provisions phones, admits and refuses
requests for secrets, takes uploads that carry passwords; the command line (debug logging) adds, changes,
refuses, imports, shows and rotates. Every line they wrote is searched for every secret."""

from __future__ import annotations

import base64
import http.client
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import autoprov, free_port, running_server, write_config
from tests.phones import headers

MAC = "0004f2aabbcc"
SIP = {"1001": "Pw-Alpha-7f3k", "1002": "Pw-Bravo-9q2m"}
LOGIN = "Pr0v-Login-S3cret"  # the provisioning login in public_url
OTHERS = ["Dhcp-S3cret-42", "Ami-S3cret-42", "Override-S3cret-42", "Basic-S3cret-42", "Refused-S3cret-42",
          "Csv-S3cret-42"]


def request(port: int, method: str, path: str, source: str, body: bytes | None = None,
            extra: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request from ``source`` (127.0.0.1 is refused secrets here, 127.0.0.2 admitted)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers={**headers("polycom_ip330"), **(extra or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_no_secret_reaches_a_log_line(tmp_path: Path, settings, capfd):
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", settings, port)
    text = config.read_text().replace("[http]\n", '[http]\nsecrets_allowed_from = ["127.0.0.2/32"]\n'
                                                  "access_log = true\n", 1)
    text = text.replace("http://prov.example.test", f"http://prov:{LOGIN}@prov.example.test")
    text += (f'[dhcp]\npassword = "{OTHERS[0]}"\n[asterisk]\nami_secret = "{OTHERS[1]}"\n'
             '[secrets]\nkey_file = "secrets.key"\n')
    config.write_text(text)
    secrets = [*SIP.values(), LOGIN, *OTHERS]
    database_password = urlsplit(settings.database.url).password
    if database_password:
        secrets.append(database_password)

    shown: list[str] = []  # every line meant for logs or people, never for a phone or Asterisk
    meant: list[str] = []  # what does carry them (render, the pjsip include): the search would find them there

    def run(*args: str, check: bool = True, secret_output: bool = False) -> None:
        done = autoprov("-vv", *args, config=config, check=check)
        shown.append(done.stderr)
        (meant if secret_output else shown).append(done.stdout)

    run("init")
    run("secrets", "keygen")
    secrets.append(next(line for line in (tmp_path / "secrets.key").read_text().splitlines()
                        if not line.startswith("#")))
    for user_id, password in SIP.items():
        run("extension", "add", user_id, "--secret", password, "--first-name", "Ada")
    run("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", "--line", "1002")
    run("extension", "update", "1001", "--secret", f"{OTHERS[4]}\nreg.2.address=x", check=False)
    run("extension", "add", "1003", "--secret", OTHERS[4] * 10, check=False)
    (tmp_path / "phones.csv").write_text(f"extension,secret,mac,model,line\n1001,{OTHERS[5]},{MAC},polycom_ip330,1\n")
    run("import", str(tmp_path / "phones.csv"), check=False)
    run("secrets", "keygen", "--add")
    run("secrets", "rotate")
    for args in (("extension", "list"), ("extension", "show", "1001"), ("phone", "show", MAC), ("config", "show")):
        run(*args)
    run("render", MAC, secret_output=True)
    run("asterisk", "pjsip", secret_output=True)

    basic = base64.b64encode(f"prov:{OTHERS[3]}".encode()).decode()
    override = f'<phone><reg reg.1.auth.password="{OTHERS[2]}"/></phone>'.encode()
    capfd.readouterr()  # the server's output, captured from here
    with running_server(config, port, options=("-vv",)):
        base = "/prov/polycom_ip330"
        status, body = request(port, "GET", f"{base}/{MAC}-phone.cfg", "127.0.0.2")
        assert status == 200 and SIP["1001"].encode() in body  # the phone does get them
        assert request(port, "GET", f"{base}/device.cfg", "127.0.0.2")[1].count(LOGIN.encode()) == 1
        assert request(port, "PUT", f"{base}/overrides/{MAC}-phone.cfg", "127.0.0.2", override)[0] == 200
        assert request(port, "GET", f"{base}/overrides/{MAC}-phone.cfg", "127.0.0.2")[1] == override
        assert request(port, "GET", f"{base}/{MAC}-phone.cfg", "127.0.0.1",
                       extra={"Authorization": f"Basic {basic}"})[0] == 403
        assert request(port, "PUT", f"{base}/overrides/{MAC}-web.cfg", "127.0.0.1", override)[0] == 403
        log_upload = f"0101000000|sip  |5|00|Register auth password {SIP['1002']}\n".encode()
        assert request(port, "PUT", f"{base}/logs/{MAC}-app.log", "127.0.0.1", log_upload)[0] == 200
        assert request(port, "PUT", f"{base}/logs/{MAC}-app.log", "127.0.0.1", log_upload,
                       {"Content-Range": f"bytes 0-{len(log_upload) + 5}/*"})[0] == 400
        assert request(port, "GET", f"{base}/0004f2aabbcd-phone.cfg", "127.0.0.2")[0] == 404
    served = capfd.readouterr()
    shown += [served.out, served.err]
    server_log = served.out + served.err
    assert "GET /prov/polycom_ip330/0004f2aabbcc-phone.cfg" in server_log  # the access log was on
    assert "secrets_allowed_from" in server_log or "403" in server_log

    run("sightings")
    run("logs", "show", MAC, secret_output=True)  # the phone's own log, as it wrote it
    assert all(password in "\n".join(meant) for password in SIP.values())
    everything = "\n".join(shown)
    leaked = {s for s in secrets if s in everything}
    assert not leaked, [line for line in everything.splitlines() if any(s in line for s in leaked)][:10]
