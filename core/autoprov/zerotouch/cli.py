"""Commands: ``autoprov dhcp isc|kea|dnsmasq``, ``autoprov asterisk pjsip|notify-conf``, ``autoprov notify``."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import click

from autoprov import hookimpl
from autoprov.cli import LazySite, parse_mac, pass_site
from autoprov.privatefiles import create_private
from autoprov.site import Site
from autoprov.tables import Extension, Phone, PhoneLine, Sighting
from autoprov.zerotouch import ami, dhcp, notify, pjsip, realtime


@click.command("dhcp")
@click.argument("server", type=click.Choice(sorted(dhcp.WRITERS)))
@click.pass_context
def dhcp_command(ctx: click.Context, server: str) -> None:
    """Print the DHCP server configuration that hands [http] public_url to the installed models' phones
    (matched by MAC prefix, plus [dhcp] extra_ouis) as option 66 and 160; other clients get neither."""
    site = ctx.find_object(LazySite).get()
    try:
        offer = dhcp.build_offer(site.settings, site.models.values())
    except dhcp.DhcpError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(dhcp.WRITERS[server](offer), nl=False)


@click.group("asterisk")
def asterisk() -> None:
    """Asterisk configuration from the provisioning database."""


@asterisk.command("pjsip")
@pass_site
def asterisk_pjsip(site: Site) -> None:
    """Print a pjsip.conf include: endpoint, auth and aor for every extension ([asterisk] settings: context,
    allow, transport, templates). It holds the SIP passwords."""
    try:
        text = pjsip.pjsip_conf(site.settings.asterisk)
    except pjsip.PjsipError as exc:
        raise click.ClickException(f"{exc}; nothing was written") from None
    click.echo(text, nl=False)


@asterisk.command("realtime-views")
@click.option("--create", is_flag=True, help="Create (or replace) them in the site's PostgreSQL database.")
@pass_site
def asterisk_realtime_views(site: Site, create: bool) -> None:
    """Print (or --create) PostgreSQL views ps_endpoints, ps_auths and ps_aors that Asterisk's realtime PJSIP
    reads directly from the provisioning database."""
    if site.keyring.enabled:  # the views would hand Asterisk the encrypted values as passwords
        raise click.ClickException("SIP passwords are encrypted at rest ([secrets] key_file): Asterisk realtime "
                                   "cannot decrypt them, so realtime views and encryption exclude each other; use "
                                   "`autoprov asterisk pjsip`, or turn encryption off (`autoprov secrets rotate "
                                   "--decrypt`, then unset key_file)")
    try:
        text = realtime.views_sql(site.settings.asterisk)
    except pjsip.PjsipError as exc:
        raise click.ClickException(str(exc)) from None
    if not create:
        click.echo(text, nl=False)
        return
    import peewee

    if not isinstance(site.db, peewee.PostgresqlDatabase):
        raise click.ClickException("realtime views are for PostgreSQL sites; this one is not")
    with site.db.atomic():
        site.db.execute_sql(text)
    click.echo(f"created views {', '.join(realtime.VIEWS)}")


@asterisk.command("notify-conf")
@pass_site
def asterisk_notify_conf(site: Site) -> None:
    """Print pjsip_notify.conf sections for the check-sync events of the installed models."""
    text, problems = notify.notify_conf(site.models.values())
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
    click.echo(text, nl=False)


def _target(site: Site, mac: str, port: int, reboot: bool) -> notify.Target | str:
    """Where and what to send phone ``mac``, or why it cannot be."""
    phone = Phone.get_or_none(Phone.mac == mac)
    seen = (Sighting.select().where(Sighting.mac == mac, Sighting.ip.is_null(False))
            .order_by(Sighting.last_seen.desc()).first())
    if seen is None:
        return "never seen: no address to send to"
    name = phone.model if phone is not None else seen.model
    model = site.models.get(name) if name else None
    if model is None:
        return f"model {name or 'unknown'} is not installed: no check-sync event known"
    try:
        event = notify.event_of(model, reboot)
        address = ipaddress.ip_address(seen.ip)
    except notify.NotifyError as exc:
        return str(exc)
    except ValueError:
        return f"last seen from {seen.ip!r}, which is not an IP address"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    first = (PhoneLine.select(Extension.user_id).join(Extension).where(PhoneLine.phone == phone)
             .order_by(PhoneLine.position).tuples().first()) if phone is not None else None
    return notify.Target(mac, str(address), port, first[0] if first else mac, event)


@click.command("notify")
@click.argument("macs", nargs=-1)
@click.option("--model", "model_name", help="Every phone of this model (as `autoprov models` lists it).")
@click.option("--all", "every", is_flag=True, help="Every phone in the database.")
@click.option("--reboot", is_flag=True, help="Ask the phones to restart, not only to re-read their configuration.")
@click.option("--port", default=notify.SIP_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="The phones' SIP port.")
@click.option("--timeout", default=4.0, show_default=True, type=click.FloatRange(0.1, 60),
              help="Seconds to wait for each phone's answer.")
@click.option("--via", type=click.Choice(["direct", "ami"]), default="direct", show_default=True,
              help="direct: autoprov sends the NOTIFY; ami: Asterisk sends it (PJSIPNotify, [asterisk] ami_*).")
@click.pass_context
@pass_site
def notify_command(site: Site, ctx: click.Context, macs: tuple[str, ...], model_name: str | None, every: bool,
                   reboot: bool, port: int, timeout: float, via: str) -> None:
    """Make phones re-read their configuration now: a SIP NOTIFY with their model's check-sync event, to the
    address each phone was last seen from, sent by autoprov itself or by Asterisk through its Manager
    Interface. Prints what was sent and what came back per phone; the exit status is 1 if any failed."""
    if sum((bool(macs), model_name is not None, every)) != 1:
        raise click.UsageError("name the phones: MAC..., --model M or --all (one of them)")
    if macs:
        chosen = list(dict.fromkeys(parse_mac(m) for m in macs))
    else:
        query = Phone.select(Phone.mac).order_by(Phone.mac)
        if model_name is not None:
            if model_name not in site.models:
                raise click.ClickException(f"model {model_name} is not installed (see `autoprov models`)")
            query = query.where(Phone.model == model_name)
        chosen = [p.mac for p in query]
        if not chosen:
            raise click.ClickException("no phone matches")
    targets = {mac: _target(site, mac, port, reboot) for mac in chosen}
    sendable = [t for t in targets.values() if isinstance(t, notify.Target)]
    reports = _via_ami(site, sendable) if via == "ami" else _direct(sendable, timeout)
    failed = 0
    for mac, target in targets.items():
        ok, line = reports[mac] if isinstance(target, notify.Target) else (False, f"{mac}: not sent: {target}")
        failed += not ok
        click.echo(line + ("" if ok else " (FAILED)"))
    if failed:
        click.echo(f"{failed} of {len(targets)} phone(s) failed", err=True)
        ctx.exit(1)


def _direct(sendable: list[notify.Target], timeout: float) -> dict[str, tuple[bool, str]]:
    """The NOTIFY sent by autoprov, to every phone at once; per MAC: whether it was answered 2xx, and a line."""
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(sendable)))) as pool:
        outcomes = list(pool.map(lambda t: notify.send_notify(t, timeout), sendable))
    reports = {}
    for o in outcomes:
        answer = f"{o.status} {o.reason}" if o.status is not None else o.reason
        reports[o.target.mac] = (o.ok, f"{o.target.mac} {notify.uri_host(o.target.host)}:{o.target.port}: "
                                       f"sent {o.request} -> {answer}")
    return reports


def _via_ami(site: Site, sendable: list[notify.Target]) -> dict[str, tuple[bool, str]]:
    """PJSIPNotify per phone over one AMI session; a failed session fails every phone it had not reached."""
    s = site.settings.asterisk
    answers: dict[str, tuple[bool, str]] = {}
    try:
        if sendable:
            if not s.ami_user:
                raise ami.AmiError("set [asterisk] ami_user and ami_secret (manager.conf) to notify through the AMI")
            with ami.AmiClient(s.ami_host, s.ami_port, s.ami_timeout) as client:
                client.login(s.ami_user, s.ami_secret)
                for t in sendable:
                    answers[t.mac] = ami.pjsip_notify(client, _uri(t), t.event)
    except ami.AmiError as exc:
        for t in sendable:
            answers.setdefault(t.mac, (False, str(exc)))
    return {t.mac: (answers[t.mac][0], f"{t.mac} via AMI {s.ami_host}:{s.ami_port}: sent PJSIPNotify URI: {_uri(t)} "
                                       f"Event: {t.event} -> {answers[t.mac][1]}") for t in sendable}


def _uri(t: notify.Target) -> str:
    return f"sip:{t.user}@{notify.uri_host(t.host)}:{t.port}"


@click.command("reprovision")
@click.option("--to", "target", required=True, help="The new server's URL as phones reach it (http:// or https://, "
              "user:password@ for a provisioning login).")
@click.option("--model", "model_name", required=True, help="The phones' model (as `autoprov models` lists it).")
@click.option("--firmware", help="The version the phones run (their User-Agent shows it, e.g. 3.3.2.0413).")
@click.option("--old-master", type=click.File("rb"), help="The old server's shared config, to keep what it lists.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the files into (then copy them onto the old FTP/TFTP/HTTP server).")
@click.pass_context
def reprovision_command(ctx: click.Context, target: str, model_name: str, firmware: str | None,
                        old_master: BinaryIO | None, out: Path) -> None:
    """Write what moves phones off an OLD provisioning server onto this one: the model's device-settings file
    and the old shared config that includes it first. Each phone then reboots twice: once onto this server,
    once onto its model's path here."""
    site = ctx.find_object(LazySite).get()
    model = site.models.get(model_name)
    if model is None:
        raise click.ClickException(f"model {model_name} is not installed (see `autoprov models`)")
    try:
        written = model.reprovision_files(target, firmware, old_master.read() if old_master else None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    existing = [name for name in written if (out / name).exists()]
    if existing:
        raise click.ClickException(f"{out} already holds {', '.join(existing)}: nothing was written")
    for name, body in written.items():
        create_private(out / name, body)  # it may carry the provisioning login of the target URL
        click.echo(f"wrote {out / name}")
    click.echo("copy them onto the old server; each phone reads them at its next boot, stores the new server, "
               "reboots onto it, is pointed at its model's path there and reboots once more")


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    cli.add_command(reprovision_command)
    cli.add_command(dhcp_command)
    cli.add_command(asterisk)
    cli.add_command(notify_command)
