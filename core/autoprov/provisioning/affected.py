"""Which phones an edit changes: each candidate's own files are rendered before and after (their ETags
compared), so a phone sharing an extension whose files come out the same is not named. A phone new to the
database counts when it has already asked for its files (it is waiting for them). The CLI then says how to
make them re-read their config, or, with ``--notify``, does it through the core check-sync hook."""

from __future__ import annotations

from collections.abc import Iterable

import click

from autoprov.checksync import notify_phones
from autoprov.provisioning.rendered import rendered_files
from autoprov.site import Site
from autoprov.tables import Extension, Phone, PhoneLine, Sighting

State = tuple[tuple[str, str, str], ...] | None  # (file, ETag, error) of each per-phone file; None: not served


def served(site: Site, macs: Iterable[str]) -> dict[str, State]:
    """What each phone is served now (its own files only: the generated ones do not change with an edit)."""
    states: dict[str, State] = {}
    for mac in macs:
        phone = Phone.get_or_none(Phone.mac == mac)
        files = rendered_files(site, phone) if phone is not None else []
        states[mac] = tuple((f.name, f.etag, f.error) for f in files if f.per_phone) or None
    return states


def of_extension(user_id: str) -> list[str]:
    """The phones that have ``user_id`` on a line."""
    query = (Phone.select(Phone.mac).join(PhoneLine).join(Extension).where(Extension.user_id == user_id)
             .distinct().order_by(Phone.mac))
    return [mac for (mac,) in query.tuples()]


def changed(site: Site, before: dict[str, State]) -> list[str]:
    """The phones whose files differ from ``before`` (new ones only if they have been seen)."""
    after = served(site, before)
    out = [mac for mac, state in before.items() if after[mac] is not None and after[mac] != state]
    fresh = [mac for mac in out if before[mac] is None]
    if fresh:
        seen = {mac for (mac,) in Sighting.select(Sighting.mac).where(Sighting.mac.in_(fresh)).tuples()}
        out = [mac for mac in out if before[mac] is not None or mac in seen]
    return out


def tell(site: Site, macs: list[str], notify: bool, reboot: bool = False, quiet: bool = False) -> None:
    """Say which phones the edit affects and how to notify them; ``notify``: notify them now. ``quiet``:
    nothing when none is (adding phones: a phone never seen has nothing to re-read)."""
    if not macs:
        if not quiet:
            click.echo("no phone's config changed")
        return
    click.echo(f"config changed for {len(macs)} phone(s): {' '.join(macs)}")
    if not notify:
        click.echo(f"  they read it at their next poll or reboot; now: autoprov notify {' '.join(macs)} "
                   "(or --notify on the edit)")
        return
    results = notify_phones(site, macs, reboot)
    if results is None:
        click.echo("  not notified: no installed plugin can notify phones (autoprov.zerotouch does)", err=True)
        return
    for r in results:
        click.echo("  " + r.report + ("" if r.ok else " (FAILED)"))
    failed = sum(not r.ok for r in results)
    if failed:
        click.echo(f"{failed} of {len(results)} phone(s) not notified; the edit itself is saved", err=True)
