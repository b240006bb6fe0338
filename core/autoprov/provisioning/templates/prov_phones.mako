<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">Phones</%def>
<div class="page-head">
  <h1>Phones <span class="muted">(${total})</span></h1>
  <a class="button primary" href="${ui.url_for('phone_new')}">Add a phone</a>
</div>
<form method="get" class="filters card" role="search" aria-label="Filter phones">
  <div class="field"><label for="q">MAC or notes</label><input id="q" name="q" type="search" value="${flt['q']}"></div>
  <div class="field"><label for="fm">Model</label>
    <select id="fm" name="model"><option value="">Any</option>
% for name, m in models.items():
      <option value="${name}"${' selected' if flt['model'] == name else '' | n}>${m.label}</option>
% endfor
    </select></div>
  <div class="field"><label for="fe">Extension</label><input id="fe" name="ext" value="${flt['ext']}" size="8"></div>
  <div class="field"><label for="fs">Seen</label>
    <select id="fs" name="seen">
% for v, t in (('', 'Any'), ('seen', 'Seen'), ('never', 'Never seen')):
      <option value="${v}"${' selected' if flt['seen'] == v else '' | n}>${t}</option>
% endfor
    </select></div>
  <div class="field check"><input id="fp" name="problem" type="checkbox" value="1"${' checked' if flt['problem'] else '' | n}><label for="fp">Has a problem</label></div>
  <button type="submit">Filter</button>
</form>
<div class="table-wrap">
<table id="phones-table">
<thead><tr><th scope="col">MAC</th><th scope="col">Model</th><th scope="col">Lines</th><th scope="col">Last seen (UTC)</th>
<th scope="col" class="hide-narrow">IP</th><th scope="col" class="hide-narrow">Firmware</th><th scope="col">Problems</th></tr></thead>
<tbody>
% for phone in rows:
<% seen = sightings.get(phone.mac, []); last = seen[0] if seen else None; problems = [s.problem for s in seen if s.problem] %>
<tr>
  <td class="mono"><a href="${ui.url_for('phone', mac=phone.mac)}">${phone.mac}</a></td>
  <td>${models[phone.model].label if phone.model in models else phone.model}</td>
  <td>${', '.join(lines.get(phone.id, [])) or '—'}</td>
  <td class="nowrap">${last.last_seen.strftime('%Y-%m-%d %H:%M') if last else 'never'}</td>
  <td class="hide-narrow">${last.ip if last and last.ip else '—'}</td>
  <td class="hide-narrow">${last.firmware if last and last.firmware else '—'}</td>
  <td>
% if problems:
    <span class="badge bad">problem</span> <span class="problem">${problems[0]}</span>
% elif phone.model not in models:
    <span class="badge bad">model not installed</span>
% elif last:
    <span class="badge ok">ok</span>
% else:
    <span class="badge">not seen</span>
% endif
  </td>
</tr>
% endfor
% if not rows:
<tr><td colspan="7" class="muted">No phones match. <a href="${ui.url_for('phone_new')}">Add one</a>, or import a CSV.</td></tr>
% endif
</tbody>
</table>
</div>
% if pages > 1:
<nav class="pager" aria-label="Pages">
% if page > 1:
<a href="${ui.url_for('phones', _query=dict(flt, page=page - 1))}">Previous</a>
% endif
<span>Page ${page} of ${pages}</span>
% if page < pages:
<a href="${ui.url_for('phones', _query=dict(flt, page=page + 1))}">Next</a>
% endif
</nav>
% endif
