"""Phones upload their logs; every line lands in the database exactly once, whichever way it is sent."""

from __future__ import annotations

import datetime as dt
import io
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
import requests
from werkzeug.test import EnvironBuilder, run_wsgi_app

from autoprov.phonefiles import logquery, logs
from autoprov.phonefiles.tables import LogFile, LogLine
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.tables import Sighting
from autoprov.vendors.polycom.logparse import decode_time, parse_line
from tests.conftest import cli as autoprov
from tests.conftest import free_port, running_server, write_config
from tests.phones import headers, user_agent
from tests.uploads_helpers import (
    MODEL,
    generations,
    head_log,
    log_lines,
    log_path,
    messages,
    put_log,
    send_chunked,
    send_cut_off,
    stored_messages,
)

MAC = "0004f2aabbcc"
UPLOADED = dt.datetime(2025, 1, 1, 0, 30)


# --- Parsing one line --------------------------------------------------------------------------------------

def test_line_fields_are_decoded():
    rec = parse_line("1015152006|lldp |4|03|Ignoring corrupt LLDP packet.", dt.datetime(2024, 10, 15, 16, 0))
    assert rec.parsed and rec.module == "lldp" and rec.level == 4 and rec.missed == 3
    assert rec.phone_time == dt.datetime(2024, 10, 15, 15, 20, 6)
    assert rec.message == "Ignoring corrupt LLDP packet."


def test_year_of_a_stamp_is_the_one_nearest_the_upload():
    # Uploaded just after New Year: a 31 December line is last year's, a 1 January one this year's.
    assert decode_time("1231235900", UPLOADED) == dt.datetime(2024, 12, 31, 23, 59)
    assert decode_time("0101002000", UPLOADED) == dt.datetime(2025, 1, 1, 0, 20)
    # A phone a few hours ahead (its own zone) is not pushed a year back.
    assert decode_time("0101090000", UPLOADED) == dt.datetime(2025, 1, 1, 9, 0)
    # 29 February exists only in leap years.
    assert decode_time("0229120000", dt.datetime(2025, 3, 1)) == dt.datetime(2024, 2, 29, 12, 0)


def test_other_time_forms_and_lines_that_do_not_fit():
    boot = parse_line("011511.006|so   |*|00|Starting", UPLOADED)
    assert boot.uptime == pytest.approx(11511.006) and boot.phone_time is None and boot.level is None
    # YYMMDDHHMM: month 25 rules out MMDDHHMMSS.
    assert parse_line("2501151200|sip  |2|00|x", dt.datetime(2025, 1, 16)).phone_time == dt.datetime(2025, 1, 15, 12)
    assert parse_line("1015152006|sip  |3|00|a|b|c", UPLOADED).message == "a|b|c"
    for raw in ("", "garbage", "1015152006|toolongmodule|3|00|x", "1015152006|sip|9|00|x"):
        rec = parse_line(raw, UPLOADED)
        assert not rec.parsed and rec.message == raw
    # Valid shape, impossible time: the fields are kept, the time is not invented.
    odd = parse_line("9999999999|sip  |3|00|x", UPLOADED)
    assert odd.parsed and odd.phone_time is None and odd.stamp == "9999999999"


def test_every_parsed_field_fits_its_column():
    longest = parse_line("1" * 12 + "." + "1" * 9 + "|" + "é" * 5 + "|4|9999|x", UPLOADED)
    assert longest.parsed and len(longest.stamp) <= LogLine.stamp.max_length
    assert len(longest.module) <= LogLine.module.max_length
    for raw in ("1" * 40 + ".5|sip  |4|00|x", "1.5" + "0" * 40 + "|sip  |4|00|x", "١٠١٥١٥٢٠٠٦|sip  |4|00|x"):
        assert not parse_line(raw, UPLOADED).parsed


def test_a_line_too_long_for_its_fields_is_stored_raw(client, db):
    garbled = "1" * 40 + ".5|sip  |4|00|garbled stamp"
    body = f"1015152000|sip  |4|00|first\n{garbled}\n1015152002|sip  |4|00|after\n".encode()
    assert put_log(client, MAC, body).status_code == 200
    assert stored_messages(MAC) == ["first", garbled, "after"]
    assert LogLine.get(LogLine.message == garbled).parsed is False


# --- Whole-file uploads ------------------------------------------------------------------------------------

def test_whole_file_reuploads_store_each_line_once(client, db):
    lines = log_lines(30)
    for upto in (10, 10, 25, 30, 30):  # the phone re-sends its growing file, sometimes unchanged
        r = put_log(client, MAC, b"".join(lines[:upto]))
        assert r.status_code == 200, r.data
    assert stored_messages(MAC, "app") == [f"event number {n}: registered line 1" for n in range(30)]
    row = LogLine.get(LogLine.mac == MAC, LogLine.message == "event number 7: registered line 1")
    assert (row.file, row.module, row.level, row.missed, row.parsed) == ("app", "lldp", 0, 0, True)


def test_a_line_without_its_newline_waits_for_the_rest(client, db):
    assert put_log(client, MAC, b"1015152006|sip  |3|00|first\n1015152007|sip  |3|00|sec").status_code == 200
    assert stored_messages(MAC) == ["first"]
    assert head_log(client, MAC).headers["Content-Length"] == str(len(b"1015152006|sip  |3|00|first\n") + 25)
    put_log(client, MAC, b"1015152006|sip  |3|00|first\n1015152007|sip  |3|00|second\n")
    assert stored_messages(MAC) == ["first", "second"]


def test_a_rotated_file_starts_a_new_generation(client, db):
    old = b"".join(log_lines(5)) + b"1015000000|sip  |3|00|unfinished"
    put_log(client, MAC, old)
    new = b"".join(log_lines(3, start=100))  # shorter and different: the phone started a new file
    put_log(client, MAC, new)
    put_log(client, MAC, new + b"".join(log_lines(2, start=103)))
    messages = stored_messages(MAC)
    assert len(messages) == 5 + 1 + 5 and "unfinished" in messages  # the old file's last line is not lost
    assert LogFile.get(LogFile.mac == MAC).generation == 2
    assert LogLine.select().where(LogLine.generation == 2).count() == 5


def test_a_late_repeat_of_an_earlier_upload_adds_nothing(client, db):
    lines = log_lines(20)
    put_log(client, MAC, b"".join(lines[:8]))
    put_log(client, MAC, b"".join(lines[:20]))
    put_log(client, MAC, b"".join(lines[:8]))  # a retry that arrives after the longer upload
    assert len(stored_messages(MAC)) == 20
    assert LogFile.get(LogFile.mac == MAC).generation == 1


def test_a_boot_log_from_a_new_boot_with_the_same_first_lines_is_new(client, db):
    boot = [b"000001.100|so   |3|00|Booting\n", b"000002.200|so   |3|00|Network up\n"]
    put_log(client, MAC, b"".join(boot) + b"000003.000|cfg  |3|00|config A\n", name="boot")
    put_log(client, MAC, b"".join(boot) + b"000003.000|cfg  |3|00|config B\n", name="boot")
    assert stored_messages(MAC, "boot") == ["Booting", "Network up", "config A", "Booting", "Network up", "config B"]


def test_whole_file_uploads_out_of_order_store_each_line_once(client, db):
    """Retries and uploads in flight at once arrive in any order: shorter ones after longer ones, at lengths
    where no upload ended before."""
    lines = log_lines(400)
    order = [220, 400, 20, 140, 380, 60, 400, 300, 1, 399, 0, 100]
    for upto in order:
        assert put_log(client, MAC, b"".join(lines[:upto])).status_code == 200
    assert generations(MAC) == {1: messages(lines)}
    assert head_log(client, MAC).headers["Content-Length"] == str(len(b"".join(lines)))


def test_a_late_upload_of_the_previous_file_after_a_rotation(client, db):
    old, new = log_lines(30), log_lines(10, start=5000)
    put_log(client, MAC, b"".join(old[:25]))
    put_log(client, MAC, b"".join(new[:4]))  # the phone rotated its file
    put_log(client, MAC, b"".join(old[:12]))  # late: repeats the old file
    put_log(client, MAC, b"".join(old[:25]))
    put_log(client, MAC, b"".join(old))  # late, and longer than what arrived of it: only its new lines
    put_log(client, MAC, b"".join(new))
    put_log(client, MAC, b"".join(new[:2]))
    assert generations(MAC) == {1: messages(old), 2: messages(new)}
    assert LogFile.get(LogFile.mac == MAC).generation == 2
    assert head_log(client, MAC).headers["Content-Length"] == str(len(b"".join(new)))


def test_only_a_few_earlier_generations_are_remembered(client, db):
    files = [log_lines(5, start=1000 * n) for n in range(logs.KEEP_GENERATIONS + 2)]
    for lines in files:
        put_log(client, MAC, b"".join(lines))
    put_log(client, MAC, b"".join(files[1][:3]))  # still known: adds nothing
    assert len(stored_messages(MAC)) == 5 * len(files)
    put_log(client, MAC, b"".join(files[0][:3]))  # forgotten: taken for a new file
    assert generations(MAC)[len(files) + 1] == messages(files[0][:3])


def test_an_older_database_is_upgraded_in_place(site, client, db):
    """A log file stored before heads were kept: ``autoprov init`` adds them, and late uploads of it are still
    recognised where an upload ended (the only check there was then)."""
    lines = log_lines(20)
    put_log(client, MAC, b"".join(lines[:8]))
    put_log(client, MAC, b"".join(lines[:15]))
    site.db.execute_sql("DROP TABLE log_generation")
    site.db.execute_sql("ALTER TABLE log_file DROP COLUMN head")
    site.db.execute_sql("UPDATE schema_version SET version = 1 WHERE component = 'phonefiles'")
    assert [(m.component, m.version) for m in site.init_database()] == [
        ("phonefiles", 2), ("phonefiles", 3), ("phonefiles", 4)]
    assert site.init_database() == []
    put_log(client, MAC, b"".join(lines[:8]))  # at a checkpoint: recognised
    put_log(client, MAC, b"".join(lines))
    put_log(client, MAC, b"".join(lines[:3]))  # a head is kept only for data stored from now on
    assert generations(MAC) == {1: messages(lines), 2: messages(lines[:3])}


# --- HEAD and appending uploads ---------------------------------------------------------------------------

def test_head_then_content_range_append(client, db):
    assert head_log(client, MAC).status_code == 404  # nothing yet: the phone sends the whole file
    lines = log_lines(40)
    first = b"".join(lines[:10])
    assert put_log(client, MAC, first).status_code == 200
    stored = 0
    for upto in (10, 22, 40):
        r = head_log(client, MAC)
        assert r.status_code == 200 and r.data == b""
        stored = int(r.headers["Content-Length"])
        tail = b"".join(lines[:upto])[stored:]
        if tail:
            assert put_log(client, MAC, tail, start=stored).status_code == 200
    assert len(stored_messages(MAC)) == 40 and len(set(stored_messages(MAC))) == 40


def test_appends_that_do_not_fit_are_refused_with_the_stored_length(client, db):
    lines = log_lines(10)
    data = b"".join(lines)
    size = len(lines[0])  # all lines of this test have the same length
    put_log(client, MAC, data[: size * 4])
    stored = size * 4
    gap = put_log(client, MAC, data[stored + 10 :], start=stored + 10)
    assert gap.status_code == 416 and gap.headers["Content-Range"] == f"bytes */{stored}"
    inside = put_log(client, MAC, data[5:], start=5)  # not where an upload ended: cannot be checked
    assert inside.status_code == 409 and gap.headers["Content-Range"] == f"bytes */{stored}"
    other = put_log(client, MAC, b"X" * stored + data[stored:], start=0)  # does not match what is stored
    assert other.status_code == 409
    assert len(stored_messages(MAC)) == 4
    assert put_log(client, MAC, data[stored : size * 7], start=stored).status_code == 200
    # A repeated append (the phone missed our answer) that starts where an upload ended is checked, and only
    # what follows the stored length is new.
    assert put_log(client, MAC, data[stored:], start=stored).status_code == 200
    assert stored_messages(MAC) == [f"event number {n}: registered line 1" for n in range(10)]


def test_content_range_must_match_the_body(client):
    h = headers(MODEL, **{}) | {"Content-Range": "bytes 0-99/*"}
    assert client.put(log_path(MAC), data=b"short\n", headers=h).status_code == 400
    h["Content-Range"] = "lines 1-2"
    assert client.put(log_path(MAC), data=b"short\n", headers=h).status_code == 400


def test_cut_off_append_longer_than_its_range_stores_nothing(client, db):
    """Cut off or not, a body may not carry more than its Content-Range says."""
    data = b"".join(log_lines(10))
    put_log(client, MAC, data[:50])
    environ = EnvironBuilder(path=log_path(MAC), method="PUT", input_stream=io.BytesIO(data[50:180]),
                             headers=headers(MODEL) | {"Content-Range": "bytes 50-74/*"}).get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"  # as a real server gives it: uploads are admitted by network
    environ["CONTENT_LENGTH"] = "200"  # announces more than it sends: a cut-off upload
    _, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    assert status.startswith("400")
    assert head_log(client, MAC).headers["Content-Length"] == "50"


# --- Limits and hostile input ------------------------------------------------------------------------------

def test_bodies_over_the_limit_get_413_and_store_nothing(site, client, db):
    site.settings.uploads.max_log_bytes = 1000
    big = b"".join(log_lines(50))
    assert put_log(client, MAC, big).status_code == 413
    # Without a Content-Length (chunked), the limit holds while reading; a body of exactly the limit is fine.
    def chunked(body: bytes) -> int:  # as gunicorn hands it over: no length, the stream ends with the body
        return client.put(log_path(MAC), input_stream=io.BytesIO(body),
                          headers=headers(MODEL) | {"Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True}).status_code

    assert chunked(big) == 413
    assert LogLine.select().count() == 0
    assert put_log(client, MAC, big[:900]).status_code == 200
    assert chunked(big[:1000]) == 200
    assert head_log(client, MAC).headers["Content-Length"] == "1000"


@pytest.mark.parametrize(
    "filename",
    ["0004f2aabbc-app.log", "0004f2aabbccd-app.log", "0004f2zzbbcc-app.log", "000000000000-app.log",
     "app.log", "0004f2aabbcc.log", "0004f2aabbcc-.log", "0004f2aabbcc-app.txt", "0004f2aabbcc-a b.log",
     "00:04:f2:aa:bb:cc-app.log"],
)
def test_malformed_names_get_400(client, db, filename):
    r = client.put(f"/prov/{MODEL}/logs/{filename}", data=b"x\n", headers=headers(MODEL))
    assert r.status_code == 400, (filename, r.data)
    assert LogLine.select().count() == 0


def test_binary_and_non_utf8_bytes_are_kept(client, db):
    body = b"1015152006|sip  |3|00|caf\xe9 \xff\xfe\n\x00\x01\x02binary\x00junk\r\n\x89PNG\r\n\x1a\n"
    assert put_log(client, MAC, body).status_code == 200
    messages = stored_messages(MAC)
    assert messages[0] == "caf\ufffd \ufffd\ufffd"
    assert messages[1] == "\ufffd\x01\x02binary\ufffdjunk"
    assert messages[2:] == ["\ufffdPNG", "\x1a"]


def test_endless_line_is_stored_in_pieces(client, db):
    body = b"A" * (logs.MAX_LINE_BYTES * 2 + 10) + b"\n"
    put_log(client, MAC, body)
    assert [len(m) for m in stored_messages(MAC)] == [logs.MAX_LINE_BYTES, logs.MAX_LINE_BYTES, 10]


def test_unknown_phone_is_accepted_and_sighted(client, db):
    assert put_log(client, "0004F2010203", b"".join(log_lines(3)), name="boot").status_code == 200
    assert len(stored_messages("0004f2010203", "boot")) == 3
    sighting = Sighting.get(Sighting.mac == "0004f2010203")
    assert sighting.model == MODEL and sighting.last_path.endswith("-boot.log")


def test_unknown_model_path_is_404(client, db):
    r = client.put("/prov/no_such_model/logs/0004f2aabbcc-app.log", data=b"x\n", headers=headers(MODEL))
    assert r.status_code == 404 and LogLine.select().count() == 0


def test_cut_off_body_keeps_its_complete_lines(client, db):
    lines = log_lines(10)
    data = b"".join(lines)
    cut = len(b"".join(lines[:6])) + 7  # six lines and part of the seventh
    environ = EnvironBuilder(path=log_path(MAC), method="PUT", input_stream=io.BytesIO(data[:cut]),
                             headers=headers(MODEL)).get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"  # as a real server gives it: uploads are admitted by network
    environ["CONTENT_LENGTH"] = str(len(data))  # announces more than it sends
    _, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    assert status.startswith("400")
    assert len(stored_messages(MAC)) == 6
    assert head_log(client, MAC).headers["Content-Length"] == str(len(b"".join(lines[:6])))
    put_log(client, MAC, data)  # the phone tries again with the whole file
    assert stored_messages(MAC) == [f"event number {n}: registered line 1" for n in range(10)]


# --- Against a real server: sockets cut half-way, many phones at once ---------------------------------------

def count_lines(site, mac: str, name: str | None = None) -> int:
    with site.db.connection_context():
        return len(stored_messages(mac, name))


def test_upload_cut_off_half_way_on_a_real_socket(server, site):
    lines = log_lines(200)
    data = b"".join(lines)
    half = len(b"".join(lines[:100])) + 20
    send_cut_off(server, log_path(MAC), len(data), data[:half], user_agent(MODEL))
    assert count_lines(site, MAC) == 100
    # The phone retries, once appending from what HEAD says, once with the whole file: still each line once.
    stored = int(requests.head(server + log_path(MAC), headers=headers(MODEL), timeout=10).headers["Content-Length"])
    assert stored == len(b"".join(lines[:100]))
    more = data[: len(b"".join(lines[:150]))]
    h = headers(MODEL) | {"Content-Range": f"bytes {stored}-{len(more) - 1}/*"}
    assert requests.put(server + log_path(MAC), data=more[stored:], headers=h, timeout=10).status_code == 200
    assert requests.put(server + log_path(MAC), data=data, headers=headers(MODEL), timeout=10).status_code == 200
    with site.db.connection_context():
        assert stored_messages(MAC) == [f"event number {n}: registered line 1" for n in range(200)]


@pytest.fixture
def gunicorn_server(tmp_path, site):
    """``autoprov serve`` with ``[http] server = "gunicorn"``: the server that tells a cut-off chunked body."""
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", site.settings, port)
    config.write_text(config.read_text().replace("[http]\n", '[http]\nserver = "gunicorn"\n', 1))
    with running_server(config, port) as url:
        yield url


def test_chunked_upload_cut_off_on_a_real_socket(gunicorn_server, site):
    """Without a Content-Length, gunicorn raises when the body ends early and drops what it had buffered in
    that read: the lines stored are the first ones sent, possibly none, never a fragment; the stored length
    says where they end, and the phone's next upload brings the rest, each line once. (Granian, the default
    server, ends the stream without an error: docs/uploads.md.)"""
    server = gunicorn_server
    lines = log_lines(300)
    data = b"".join(lines)
    first = b"".join(lines[:100])
    rest = data[len(first) :]
    cut = send_chunked(server, log_path(MAC), [first], user_agent(MODEL), end=b"%x\r\n" % len(rest) + rest[:500])
    assert cut.startswith(b"HTTP/1.1 400") and b"upload cut off" in cut, cut
    # All sent, but not the chunked body's last chunk: gunicorn's own error, answered as a cut-off upload too.
    unfinished = send_chunked(server, log_path(MAC, "boot"), [data], user_agent(MODEL), end=b"0\r\n")
    assert unfinished.startswith(b"HTTP/1.1 400") and b"upload cut off" in unfinished, unfinished
    for name in ("app", "boot"):
        with site.db.connection_context():
            kept = stored_messages(MAC, name)
        assert kept == messages(lines[: len(kept)])
        h = requests.head(server + log_path(MAC, name), headers=headers(MODEL), timeout=10)
        stored = int(h.headers["Content-Length"]) if h.status_code == 200 else 0
        assert stored == len(b"".join(lines[: len(kept)]))
        done = send_chunked(server, log_path(MAC, name), [data[:4000], data[4000:]], user_agent(MODEL), b"0\r\n\r\n")
        assert done.startswith(b"HTTP/1.1 200"), done
        with site.db.connection_context():
            assert generations(MAC, name) == {1: messages(lines)}


def test_many_phones_upload_at_once(server, site):
    """20 phones, each uploading boot.log whole and app.log by HEAD + append, several times, concurrently;
    and two phones that upload the same file twice at the same moment."""
    phones = [f"0004f2{n:06x}" for n in range(20)]
    lines = log_lines(120)
    errors: list[str] = []

    def phone(mac: str) -> None:
        with requests.Session() as s:
            s.headers.update(headers(MODEL))
            try:
                for upto in (30, 60, 90, 120):
                    whole = b"".join(lines[:upto])
                    r = s.put(server + log_path(mac, "boot"), data=whole, timeout=60)
                    assert r.status_code == 200, r.text
                    h = s.head(server + log_path(mac, "app"), timeout=60)
                    stored = int(h.headers["Content-Length"]) if h.status_code == 200 else 0
                    rng = {"Content-Range": f"bytes {stored}-{len(whole) - 1}/*"}
                    r = s.put(server + log_path(mac, "app"), data=whole[stored:], headers=rng, timeout=60)
                    assert r.status_code == 200, r.text
                    # The same whole file again, from another thread at once: must not double.
                    twin = threading.Thread(target=s.put, args=(server + log_path(mac, "boot"),),
                                            kwargs={"data": whole, "timeout": 60})
                    twin.start()
                    s.put(server + log_path(mac, "boot"), data=whole, timeout=60)
                    twin.join()
            except Exception as exc:  # reported below: an assertion in a thread would be lost
                errors.append(f"{mac}: {exc!r}")

    threads = [threading.Thread(target=phone, args=(mac,)) for mac in phones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = messages(lines)
    with site.db.connection_context():
        for mac in phones:
            assert stored_messages(mac, "boot") == expected, mac
            assert stored_messages(mac, "app") == expected, mac
    # Sightings are written by the server a moment after the requests (buffered): wait, with a deadline.
    deadline = time.monotonic() + 15
    while True:
        with site.db.connection_context():
            seen = Sighting.select().where(Sighting.mac.in_(phones)).count()
        if seen == 20 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert seen == 20


def test_whole_file_uploads_in_flight_at_once(server, site):
    """A phone's growing file, uploaded whole 20 times at once (retries, a slow network): each line once.
    Then the phone rotates: uploads of the old file and of the new one race each other."""
    old, new = log_lines(400), log_lines(200, start=5000)

    def upload_all(bodies: list[bytes]) -> None:
        with ThreadPoolExecutor(len(bodies)) as pool:
            puts = [pool.submit(requests.put, server + log_path(MAC), data=b, headers=headers(MODEL), timeout=60)
                    for b in bodies]
            assert [f.result().status_code for f in puts] == [200] * len(bodies)

    shuffled = random.Random(8).sample(range(20, 401, 20), 20)
    upload_all([b"".join(old[:n]) for n in shuffled])
    with site.db.connection_context():
        assert generations(MAC) == {1: messages(old)}
    upload_all([b"".join(old[:n]) for n in range(25, 401, 25)] + [b"".join(new[:n]) for n in range(20, 201, 20)])
    with site.db.connection_context():
        assert generations(MAC) == {1: messages(old), 2: messages(new)}


# --- Querying and pruning -----------------------------------------------------------------------------------

def test_query_filters(client, db):
    put_log(client, MAC, b"".join(log_lines(14)))
    put_log(client, MAC, b"000001.000|so   |5|00|boot failure\nnot a log line\n", name="boot")
    assert len(list(logquery.query_lines(MAC, file="app"))) == 14
    assert [ln.level for ln in logquery.query_lines(MAC, file="app", min_level=5)] == [5, 6, 5, 6]
    assert [ln.message for ln in logquery.query_lines(MAC, grep="FAILURE")] == ["boot failure"]
    assert [ln.message for ln in logquery.query_lines(MAC, limit=2)] == ["boot failure", "not a log line"]


def test_prune_removes_old_lines_only(site, client, db):
    put_log(client, MAC, b"".join(log_lines(10)))
    LogLine.update(received_at=dt.datetime(2000, 1, 1)).where(LogLine.id <= 4 + LogLine.select(
        LogLine.id).order_by(LogLine.id).limit(1).scalar() - 1).execute()
    assert logquery.prune(site.db, dt.timedelta(days=30)) == 4
    assert len(stored_messages(MAC)) == 6
    # Automatic pruning by [uploads] log_retention_days, at most once per interval.
    LogLine.update(received_at=dt.datetime(2000, 1, 1)).execute()
    logquery._next_prune = 0.0
    logquery.prune_if_due(site.db, 30)
    assert LogLine.select().count() == 0


def test_logs_command_line(tmp_path, site, client):
    with site.db.connection_context():
        put_log(client, MAC, b"".join(log_lines(12)) + b"weird line\n")
        LogLine.update(received_at=dt.datetime(2000, 1, 1)).where(LogLine.message == "weird line").execute()
        year = LogLine.select(LogLine.phone_time).first().phone_time.year  # the one nearest today
    config = write_config(tmp_path / "cli.toml", site.settings, 8080)
    out = autoprov("logs", "show", "00:04:F2:AA:BB:CC", "--file", "app", "--level", "5", config=config).stdout
    assert out.splitlines() == [
        f"# {MAC}: times in UTC, the phone's zone (RAW lines: when they were uploaded)",
        f"{year}-10-15 00:00:05 app dns   5 event number 5: registered line 1",
        f"{year}-10-15 00:00:06 app sip   6 event number 6: registered line 1",
    ]
    assert "RAW weird line" in autoprov("logs", "show", MAC, "--grep", "weird", config=config).stdout
    assert "0004f2aabbcc-app.log" in autoprov("logs", "files", config=config).stdout
    assert "pruned 1 log line" in autoprov("logs", "prune", "--older-than", "30d", config=config).stdout
    bad = autoprov("logs", "show", "nonsense", config=config, check=False)
    assert bad.returncode != 0 and "not a MAC" in bad.stderr
    # Nothing stored: an error on one line, as for overrides and contacts; nothing matching: a note.
    for args, error in [(("0004f2000099",), "no logs of 0004f2000099 stored"),
                        ((MAC, "--file", "boot"), f"no {MAC}-boot.log stored")]:
        unknown = autoprov("logs", "show", *args, config=config, check=False)
        assert unknown.returncode == 1 and unknown.stdout == ""
        assert unknown.stderr.strip() == f"Error: {error} (`autoprov logs files` lists those there are)"
    unmatched = autoprov("logs", "show", MAC, "--grep", "no such text", config=config)
    assert unmatched.stdout == "" and unmatched.stderr.strip() == f"no line of the logs of {MAC} matches"


def test_logs_show_the_unfinished_last_line(tmp_path, site, client):
    """A file's last line without its newline yet is not a row, but ``logs show`` shows it after its file's
    newest line, marked, when it is among the newest lines and passes the filters."""
    app = b"".join(log_lines(3)) + b"1015000003|sip  |5|00|half a lin"
    with site.db.connection_context():
        put_log(client, MAC, app)
        put_log(client, MAC, b"000001.000|so   |3|00|booted\n000002.000|so   |3|00|still boo", name="boot")
    config = write_config(tmp_path / "cli.toml", site.settings, 8080)

    def show(*args: str) -> list[str]:  # without the date and time
        out = autoprov("logs", "show", MAC, *args, config=config).stdout.splitlines()[1:]
        return [re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "", line) for line in out]

    incomplete = "[incomplete: no newline yet]"
    half, still = f"app sip   5 half a lin {incomplete}", f"boot+2.000s boot so    3 still boo {incomplete}"
    booted = "boot+1.000s boot so    3 booted"
    assert show() == [*(f"app {m}" for m in ("sip   0 event number 0: registered line 1",
                                              "lldp  1 event number 1: registered line 1",
                                              "so    2 event number 2: registered line 1")),
                      half, booted, still]
    assert show("--file", "boot") == [booted, still]
    assert show("--grep", "HALF") == show("--level", "5") == [half]
    assert show("--limit", "1") == [booted, still]  # app.log's newest line is older than those shown: left out
    with site.db.connection_context():
        put_log(client, MAC, app + b"e\n")
    assert show("--file", "app")[-1] == "app sip   5 half a line"


def test_since_is_on_the_phones_clock(tmp_path, site, client):
    """A phone in New York writes New York time: ``--since 1h`` means the last hour there, and so does a
    date without an offset; the output says which clock it shows."""
    zone = ZoneInfo("America/New_York")
    now = dt.datetime.now(zone)
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw"))
        admin.add_phone(site, MAC, MODEL, ["1001"], time_zone="America/New_York")
        body = "".join(f"{now - dt.timedelta(minutes=m):%m%d%H%M%S}|sip  |4|00|{m} minutes ago\n" for m in (90, 30, 5))
        put_log(client, MAC, body.encode() + b"no time of its own\n")
    config = write_config(tmp_path / "cli.toml", site.settings, 8080)
    out = autoprov("logs", "show", MAC, "--since", "1h", config=config).stdout.splitlines()
    assert out[0] == f"# {MAC}: times in America/New_York, the phone's zone (RAW lines: when they were uploaded)"
    assert [line.split(" ", 2)[2] for line in out[1:]] == [
        "app sip   4 30 minutes ago", "app sip   4 5 minutes ago", "app RAW no time of its own"
    ]
    assert out[1].startswith(f"{now - dt.timedelta(minutes=30):%Y-%m-%d %H:%M:%S} app")
    uploaded = dt.datetime.fromisoformat(out[3][:19]).replace(tzinfo=zone)  # on the phone's clock too
    assert abs(uploaded - now) < dt.timedelta(minutes=10)
    local = f"{now - dt.timedelta(minutes=60):%Y-%m-%dT%H:%M:%S}"
    assert autoprov("logs", "show", MAC, "--since", local, config=config).stdout.splitlines()[1:] == out[1:]
    utc = (now - dt.timedelta(minutes=60)).astimezone(dt.UTC).isoformat()  # an explicit offset is honoured
    assert autoprov("logs", "show", MAC, "--since", utc, config=config).stdout.splitlines()[1:] == out[1:]


def test_uploads_prune_by_retention_after_answering(site, client, db):
    put_log(client, "0004f2000001", b"".join(log_lines(3)))
    LogLine.update(received_at=dt.datetime(2000, 1, 1)).execute()
    logquery._next_prune = 0.0
    response = put_log(client, MAC, b"".join(log_lines(2)))
    response.close()  # the server closes the response once it is sent: then the prune runs
    assert stored_messages("0004f2000001") == [] and len(stored_messages(MAC)) == 2
