"""Routing incoming calls: patterns and time rules, then the route script over FastAGI."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from autoprov.agi.routing import (
    choose_route,
    dial_string,
    in_time_window,
    parse_days,
    pattern_regex,
    validate_destination,
)
from autoprov.agi.runner import collect_scripts
from autoprov.agi.server import FastAGIServer
from autoprov.agi.tables import Route
from autoprov.agi.testing import fastagi_call
from autoprov.db import database, open_database
from autoprov.site import Site

from .conftest import WEDNESDAY_1030_UTC

Start = Callable[..., FastAGIServer]


@pytest.mark.parametrize(
    "pattern, matches, misses",
    [
        ("5551000", ["5551000"], ["55510000", "5551001"]),
        ("_555XXXX", ["5551000", "5559999"], ["555100", "4551000"]),
        ("_NXXNXXXXXX", ["2125551234"], ["1125551234", "212555123"]),
        ("_9.", ["91", "9123"], ["9"]),
        ("_9!", ["9", "9123"], ["8"]),
        ("_[1-3]XX", ["100", "399"], ["400"]),
        ("_+1.", ["+12125551234"], ["12125551234"]),
        ("_1-800-NXXXXXX", ["18002223333"], ["18001223333", "1-800-222-3333"]),  # '-' is eye candy
        ("_[1-35]x", ["10", "25", "59"], ["40", "-0"]),  # ranges and single characters; x in any case
        ("_[-5]X", ["-1", "51"], ["41"]),  # a '-' without a character on each side is itself
        ("_9.5", ["91", "9123"], ["9"]),  # Asterisk ignores what follows '.'
    ],
)
def test_asterisk_patterns(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = pattern_regex(pattern)
    assert all(regex.match(m) for m in matches)
    assert not any(regex.match(m) for m in misses)


def test_days() -> None:
    assert parse_days("") == frozenset(range(7))
    assert parse_days("mon-fri") == frozenset({0, 1, 2, 3, 4})
    assert parse_days("sat,sun") == frozenset({5, 6})
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    with pytest.raises(ValueError):
        parse_days("weekdays")


def rule(**kw: object) -> Route:
    defaults = {"id": 1, "pattern": "_X.", "priority": 100, "dest_type": "extension", "destination": "1001",
                "days": "", "start": "", "end": "", "time_zone": ""}
    return Route(**{**defaults, **kw})


def test_time_windows_use_the_rules_zone_or_the_sites() -> None:
    office = rule(days="mon-fri", start="09:00", end="17:00")
    assert in_time_window(office, WEDNESDAY_1030_UTC, "Europe/London")  # 10:30 in London
    assert not in_time_window(office, WEDNESDAY_1030_UTC, "America/New_York")  # 05:30 there
    assert not in_time_window(rule(days="mon-fri", start="09:00", end="17:00", time_zone="America/New_York"),
                              WEDNESDAY_1030_UTC, "Europe/London")
    # Daylight saving: 08:30 UTC in July is 09:30 in London.
    assert in_time_window(office, datetime(2024, 7, 10, 8, 30, tzinfo=UTC), "Europe/London")
    assert not in_time_window(office, datetime(2024, 1, 10, 8, 30, tzinfo=UTC), "Europe/London")


def test_a_window_past_midnight_belongs_to_the_day_it_opened() -> None:
    night = rule(days="fri", start="22:00", end="06:00")
    assert in_time_window(night, datetime(2024, 1, 12, 23, 0, tzinfo=UTC), "UTC")  # Friday 23:00
    assert in_time_window(night, datetime(2024, 1, 13, 5, 0, tzinfo=UTC), "UTC")  # Saturday 05:00
    assert not in_time_window(night, datetime(2024, 1, 12, 5, 0, tzinfo=UTC), "UTC")  # Friday 05:00
    assert not in_time_window(night, datetime(2024, 1, 13, 23, 0, tzinfo=UTC), "UTC")  # Saturday 23:00


def test_choose_route_order() -> None:
    routes = [
        rule(id=1, pattern="_X.", priority=100, destination="9000"),
        rule(id=2, pattern="_555XXXX", priority=100, destination="2000"),
        rule(id=3, pattern="5551000", priority=100, destination="1000"),
        rule(id=4, pattern="5551000", priority=10, destination="1500", days="sat,sun"),
        rule(id=5, pattern="5551000", priority=200, destination="1600", time_zone="Not/AZone"),
    ]
    now = WEDNESDAY_1030_UTC
    assert choose_route(routes, "5551000", now, "UTC").id == 3  # exact beats pattern; weekend rule not now
    assert choose_route(routes, "5552000", now, "UTC").id == 2  # the more specific pattern
    assert choose_route(routes, "123", now, "UTC").id == 1
    assert choose_route(routes[2:4], "999", now, "UTC") is None


@pytest.mark.parametrize(
    "winner, loser, did",
    [
        ("_1XX", "_[1-5]XX", "123"),  # a literal beats a set, however long the set's spelling
        ("_5551XXX", "_555XXXX", "5551234"),  # the first position that differs decides
        ("_[1-5]XX", "_NXX", "234"),  # a set of 5 beats N (8) ...
        ("_NXX", "_ZXX", "234"),  # ... N beats Z (9) ...
        ("_ZXX", "_XXX", "234"),  # ... Z beats X (10)
        ("_[12]X", "_[13]X", "15"),  # same size: the lower characters
        ("_555X", "_5.", "5551"),  # any character beats '.'
        ("_X.", "_X!", "12"),  # '.' beats '!'
        # Asterisk 22's default matcher (extenpatternmatchnew=no) sorts the end of a pattern after '!':
        # with _01X and _01X! at one priority it takes _01X! for 012, and `dialplan show` lists it first.
        ("_X!", "_X", "1"),
        ("_01X!", "_01X", "012"),
        ("_05XX", "_05!", "0512"),  # any character beats '!' ...
        ("_05!", "_05XX", "05"),  # ... which alone matches "05"
        ("_06XX", "_06.", "0612"),
        ("_1-800-NXXXXXX", "_1800XXXXXXX", "18002223333"),  # '-' is not a position
        ("5551000", "_5551000", "5551000"),  # a DID beats any pattern
    ],
)
def test_the_most_specific_pattern_wins_as_in_asterisk(winner: str, loser: str, did: str) -> None:
    for first, second in ((winner, loser), (loser, winner)):  # whatever the order in the table
        routes = [rule(id=1, pattern=first), rule(id=2, pattern=second)]
        assert choose_route(routes, did, WEDNESDAY_1030_UTC, "UTC").pattern == winner


@pytest.mark.parametrize(
    "dest_type, destination, dial",
    [
        ("extension", "1001", "PJSIP/1001"),
        ("group", "1001, 1002,1003", "PJSIP/1001&PJSIP/1002&PJSIP/1003"),
        ("external", "+15551234", "Local/+15551234@outbound"),
    ],
)
def test_dial_strings(dest_type: str, destination: str, dial: str) -> None:
    assert dial_string(dest_type, destination) == dial


@pytest.mark.parametrize(
    "dest_type, destination",
    [("extension", "1001&PJSIP/evil"), ("extension", "1001,60,tT"), ("group", ""), ("external", "555 1234"),
     ("external", "5551234@other"), ("voicemail", "1001"), ("extension", "${SHELL(id)}")],
)
def test_destinations_that_would_change_the_dial_are_refused(dest_type: str, destination: str) -> None:
    with pytest.raises(ValueError):
        validate_destination(dest_type, destination)


# -- the script ----------------------------------------------------------------------------------------


def add_routes(site: Site, *routes: dict) -> None:
    with site.db.connection_context():
        for r in routes:
            Route.create(**{"dest_type": "extension", **r})


def route_call(server: FastAGIServer, query: str = "", **kw: object):  # noqa: ANN201
    return fastagi_call(server.host, server.port, f"route{query}", **kw)  # type: ignore[arg-type]


def test_route_dials_the_extension_for_the_did(agi_site: Site, start_server: Start) -> None:
    add_routes(agi_site, {"pattern": "5551000", "destination": "1001", "ring_timeout": 20})
    server = start_server(agi_site)
    t = route_call(server, env={"extension": "5551000"}, variables={"DIALSTATUS": "ANSWER"})
    assert t.executed == [("Dial", "PJSIP/1001,20")]
    assert t.variables["ROUTE_STATUS"] == "ROUTED" and t.variables["ROUTE_DIALSTATUS"] == "ANSWER"
    assert t.status == "SUCCESS"


def test_route_by_time_of_day_and_ring_group(agi_site: Site, start_server: Start) -> None:
    add_routes(
        agi_site,
        {"pattern": "_555XXXX", "priority": 10, "dest_type": "group", "destination": "1001,1002",
         "days": "mon-fri", "start": "09:00", "end": "17:00"},  # the site's zone: Europe/London
        {"pattern": "_555XXXX", "priority": 20, "dest_type": "extension", "destination": "1099"},
    )
    office = start_server(agi_site)  # Wednesday 10:30 London
    t = route_call(office, "?tech=SIP", env={"extension": "s", "dnid": "5551234"})
    assert t.executed == [("Dial", "SIP/1001&SIP/1002,30")]
    night = start_server(agi_site, clock=lambda: datetime(2024, 1, 10, 20, 0, tzinfo=UTC))
    t = route_call(night, env={"extension": "5551234"})
    assert t.executed == [("Dial", "PJSIP/1099,30")]


def test_route_falls_back_when_nobody_answers(agi_site: Site, start_server: Start) -> None:
    add_routes(agi_site, {"pattern": "5551000", "destination": "1001", "fallback_type": "external",
                          "fallback": "+15559876"})
    server = start_server(agi_site)
    t = route_call(server, "?outbound=to-pstn", env={"extension": "5551000"}, variables={"DIALSTATUS": "NOANSWER"})
    assert t.executed == [("Dial", "PJSIP/1001,30"), ("Dial", "Local/+15559876@to-pstn,30")]
    assert t.variables["ROUTE_STATUS"] == "FALLBACK"


def test_no_route_uses_the_dialplans_fallback(agi_site: Site, start_server: Start) -> None:
    server = start_server(agi_site)
    t = route_call(server, "?fallback=PJSIP/operator", env={"extension": "5550000"})
    assert t.executed == [("Dial", "PJSIP/operator,30")]
    assert t.variables["ROUTE_STATUS"] == "NOROUTE" and t.status == "SUCCESS"
    t = route_call(server, env={"extension": "5550000"})
    assert t.executed == [] and t.variables["ROUTE_STATUS"] == "NOROUTE"


def test_route_with_the_database_down(tmp_path: Path, agi_site: Site) -> None:
    (tmp_path / "down.db").mkdir()
    down = open_database(f"sqlite:///{tmp_path}/down.db")
    server = FastAGIServer(collect_scripts(agi_site.plugins), agi_site.settings, down, host="127.0.0.1", port=0)
    server.start()
    try:
        t = route_call(server, "?fallback=PJSIP/operator", env={"extension": "5551000"})
    finally:
        server.shutdown(5)
        database.initialize(agi_site.db)
    assert t.executed == [("Dial", "PJSIP/operator,30")]
    assert t.variables["ROUTE_STATUS"] == "UNAVAILABLE"
    assert t.status == "FAILURE"  # AGISTATUS tells the dialplan, after the call went on


def test_caller_hangs_up_during_dial(agi_site: Site, start_server: Start) -> None:
    add_routes(agi_site, {"pattern": "5551000", "destination": "1001", "fallback_type": "extension",
                          "fallback": "1002"})
    server = start_server(agi_site)
    t = route_call(server, env={"extension": "5551000"}, hangup_at=2, variables={"DIALSTATUS": "CANCEL"})
    assert t.executed == [("Dial", "PJSIP/1001,30")]  # no fallback for a caller who is gone
    assert t.variables["ROUTE_STATUS"] == "ROUTED"  # SET VARIABLE still works after hangup


def test_calls_in_a_long_dial_hold_no_database_connection(site: Site, start_server: Start) -> None:
    """More calls in Dial than there are connections: new calls still get the database."""
    from autoprov.agi.tables import CallerName

    add_routes(site, {"pattern": "6000", "destination": "1001"})
    with site.db.connection_context():
        CallerName.create(number="5551234", name="Acme Sales")
    site.settings.agi.max_db_connections = 2
    site.settings.agi.database_timeout = 1.0
    in_dial, hang_up = threading.Semaphore(0), threading.Event()

    def ringing(application: str, options: str) -> None:
        in_dial.release()
        hang_up.wait(30)  # the callee rings until the test has made its other call

    server = start_server(site)
    with ThreadPoolExecutor(3) as pool:
        routed = [pool.submit(route_call, server, env={"extension": "6000"}, on_exec=ringing,
                              variables={"DIALSTATUS": "ANSWER"}) for _ in range(3)]
        try:
            for _ in routed:
                assert in_dial.acquire(timeout=15), "a routed call never reached Dial"
            t = fastagi_call(server.host, server.port, "cid-name", env={"callerid": "5551234"})
            assert t.status == "SUCCESS" and t.variables["CALLERID(name)"] == "Acme Sales"
        finally:
            hang_up.set()
        for done in routed:
            t = done.result(30)
            assert t.executed == [("Dial", "PJSIP/1001,30")]
            assert t.variables["ROUTE_STATUS"] == "ROUTED" and t.status == "SUCCESS"


def test_a_database_without_the_schema_is_unavailable(database_url: str, agi_site: Site) -> None:
    """An empty database (no `autoprov init`): PostgreSQL's 42P01 is 'unavailable' like SQLite's error."""
    empty = open_database(database_url)
    server = FastAGIServer(collect_scripts(agi_site.plugins), agi_site.settings, empty, host="127.0.0.1", port=0)
    server.start()
    try:
        t = route_call(server, "?fallback=PJSIP/operator", env={"extension": "5551000"})
        cid = fastagi_call(server.host, server.port, "cid-name", env={"callerid": "5551234"})
    finally:
        server.shutdown(5)
        empty.close()
        database.initialize(agi_site.db)
    assert t.executed == [("Dial", "PJSIP/operator,30")]
    assert t.variables["ROUTE_STATUS"] == "UNAVAILABLE" and t.status == "FAILURE"
    assert cid.commands == [] and cid.status == "FAILURE"


@pytest.mark.parametrize(
    "assignment",
    ["ring_timeout = '30,,U(evil)'", "ring_timeout = 0", "ring_timeout = -5", "ring_timeout = 100000",
     "destination = '1001,60,U(evil)'", "destination = '1001&Local/x@evil'", "dest_type = 'voicemail'"],
)
def test_database_values_never_reach_the_dial_string_unchecked(site: Site, start_server: Start,
                                                                assignment: str) -> None:
    """A row written behind the command line's back (raw SQL) is not dialled: the dialplan's fallback is."""
    postgresql = not site.settings.database.url.startswith("sqlite")
    if postgresql and assignment.startswith("ring_timeout = '"):
        pytest.skip("only SQLite keeps text in an integer column")
    add_routes(site, {"pattern": "5551000", "destination": "1001"})
    site.db.execute_sql(f"UPDATE route SET {assignment}")
    server = start_server(site)
    t = route_call(server, "?fallback=PJSIP/operator", env={"extension": "5551000"})
    assert t.executed == [("Dial", "PJSIP/operator,30")]
    assert t.variables["ROUTE_STATUS"] == "NOROUTE"


def test_a_bad_fallback_in_the_database_is_not_dialled(site: Site, start_server: Start) -> None:
    add_routes(site, {"pattern": "5551000", "destination": "1001", "fallback_type": "extension", "fallback": "1002"})
    site.db.execute_sql("UPDATE route SET fallback = '1002,,U(evil)'")
    server = start_server(site)
    t = route_call(server, env={"extension": "5551000"}, variables={"DIALSTATUS": "NOANSWER"})
    assert t.executed == [("Dial", "PJSIP/1001,30")]
    assert t.variables["ROUTE_STATUS"] == "ROUTED"


@pytest.mark.parametrize("timeout", ["99999", "0", "30,,U(x)", "١٢"])
def test_the_dialplans_fallback_timeout_is_checked(agi_site: Site, start_server: Start, timeout: str) -> None:
    server = start_server(agi_site)
    t = route_call(server, f"?fallback=PJSIP/operator&timeout={quote(timeout)}", env={"extension": "5550000"})
    assert t.executed == [("Dial", "PJSIP/operator,30")]


def test_a_bad_row_is_skipped_and_the_others_still_route(site: Site, start_server: Start,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    add_routes(site, {"pattern": "_[5-1]X", "priority": 1, "destination": "1001"},
               {"pattern": "_X.", "priority": 100, "destination": "1099"})
    if site.settings.database.url.startswith("sqlite"):
        add_routes(site, {"pattern": "_XX", "priority": 2, "destination": "1002"})
        site.db.execute_sql("UPDATE route SET priority = 'high' WHERE pattern = '_XX'")
    server = start_server(site)
    t = route_call(server, env={"extension": "51"})
    assert t.executed == [("Dial", "PJSIP/1099,30")]
    assert t.variables["ROUTE_STATUS"] == "ROUTED" and t.status == "SUCCESS"
    assert "is invalid and skipped" in caplog.text


@pytest.mark.parametrize("value", ["5551000\udcff", "\udcff", "555\x001000", "9" * 20000])
def test_route_takes_any_dialled_number(site: Site, start_server: Start, value: str) -> None:
    add_routes(site, {"pattern": "_X.", "destination": "1001"})
    server = start_server(site)
    for env in ({"extension": value}, {"extension": "s", "dnid": value}):
        t = route_call(server, "?fallback=PJSIP/operator", env=env)
        assert t.status == "SUCCESS" and t.variables["ROUTE_STATUS"] in ("ROUTED", "NOROUTE")


def test_a_plus_in_the_parameters_stays_a_plus(agi_site: Site, start_server: Start) -> None:
    # The dialplan's URL is not a form: `route?did=+4930123` means the DID +4930123.
    add_routes(agi_site, {"pattern": "+4930123", "destination": "1001"})
    server = start_server(agi_site)
    t = route_call(server, "?did=+4930123", env={"extension": "s"})
    assert t.executed == [("Dial", "PJSIP/1001,30")]
    t = route_call(server, "?fallback=Local/+15550199@outbound", env={"extension": "5550000"})
    assert t.executed == [("Dial", "Local/+15550199@outbound,30")]


def test_an_ampersand_inside_a_value_is_written_percent_26(agi_site: Site, start_server: Start) -> None:
    server = start_server(agi_site)
    t = route_call(server, "?fallback=PJSIP/1001%26PJSIP/1002&timeout=20", env={"extension": "5550000"})
    assert t.executed == [("Dial", "PJSIP/1001&PJSIP/1002,20")]  # two destinations, as Dial allows
    t = route_call(server, "?fallback=PJSIP/1001&PJSIP/1002", env={"extension": "5550000"})
    assert t.executed == [("Dial", "PJSIP/1001,30")]  # a bare & starts the next parameter
