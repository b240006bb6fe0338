<%inherit file="/admin_layout.mako"/>
<%def name="title()">Access audit</%def>
<h1>Access audit</h1>
<p class="muted">Phone files holding secrets that were sent, requests refused, clients throttled for guessing
MACs and phones flagged on a first contact from afar; newest first, times in UTC. The server writes them every
few seconds.</p>
<form method="get" class="filters" role="search">
  <div class="field"><label for="f-mac">MAC</label><input id="f-mac" name="mac" value="${values['mac']}"></div>
  <div class="field"><label for="f-client">Client</label><input id="f-client" name="client" value="${values['client']}" placeholder="10.1.2.3 or 10.1.*"></div>
  <div class="field"><label for="f-since">Since</label><input id="f-since" name="since" value="${values['since']}" placeholder="2h, 7d, 2026-11-30"></div>
  <div class="field"><label for="f-until">Until</label><input id="f-until" name="until" value="${values['until']}"></div>
  <div class="field"><label for="f-outcome">Outcome</label><select id="f-outcome" name="outcome">
    <option value="">any</option>
% for o in outcomes:
    <option value="${o}"${' selected' if o == values['outcome'] else '' | n}>${o}</option>
% endfor
  </select></div>
  <button type="submit">Show</button>
</form>
% if error:
<p class="error" role="alert">${error}</p>
% endif
<div class="table-wrap">
<table id="access-audit">
<thead><tr><th scope="col">When (UTC)</th><th scope="col">Outcome</th><th scope="col">Phone</th><th scope="col">Client</th><th scope="col">Request</th><th scope="col">Why</th></tr></thead>
<tbody>
% for r in rows:
<tr class="outcome-${r.outcome}"><td class="nowrap">${r.at.strftime('%Y-%m-%d %H:%M:%S')}</td>
<td>${r.outcome}${f' ({r.status})' if r.status else ''}${f' x{r.count}' if r.count > 1 else ''}</td>
<td>${r.mac or '-'}</td><td>${r.client or '-'}</td>
<td>${f'{r.method} {r.path}' if r.path else '-'}<br><span class="muted">${r.user_agent}</span></td>
<td>${r.reason}</td></tr>
% endfor
% if not rows:
<tr><td colspan="6" class="muted">Nothing recorded${' with these filters' if any(values.values()) else ' yet'}.</td></tr>
% endif
</tbody>
</table>
</div>
% if more:
<p><a href="${ui.url_for('access_audit', _query=dict(values, before=more))}">Older entries</a></p>
% endif
