## Form helpers: a labelled field with its error message next to it (aria-describedby), the CSRF field.
## A form shown again with errors puts the focus on its first field in error (not on its usual first field).
<%!
def focus_attrs(ui, errors, attrs, error):
    if not any(key for key in (errors or {}) if key):
        return attrs
    attrs = " ".join(word for word in attrs.split(" ") if word != "autofocus")
    if error and not getattr(ui, "error_focused", False):
        ui.error_focused = True  # once per page: the first field in error, in the order they are shown
        attrs += " autofocus"
    return attrs
%>
<%def name="csrf()"><input type="hidden" name="csrf" value="${ui.csrf}"></%def>

<%def name="field(name, label, value='', error=None, type='text', hint=None, required=False, attrs='', id=None)">
<% fid = id or 'f-' + name; attrs = focus_attrs(ui, context.get('errors'), attrs, error) %>
<div class="field${' has-error' if error else ''}">
  <label for="${fid}">${label}${' *' if required else ''}</label>
  <input id="${fid}" name="${name}" type="${type}" value="${value}"${' required' if required else '' | n}\
% if error or hint:
 aria-describedby="${fid}-msg"\
% endif
% if error:
 aria-invalid="true"\
% endif
 ${attrs | n}>
% if error:
  <p class="msg error" id="${fid}-msg">${error}</p>
% elif hint:
  <p class="msg" id="${fid}-msg">${hint}</p>
% endif
</div>
</%def>

<%def name="select(name, label, options, value='', error=None, hint=None, required=False, id=None)">
## options: (value, text) pairs
<% fid = id or 'f-' + name; attrs = focus_attrs(ui, context.get('errors'), '', error) %>
<div class="field${' has-error' if error else ''}">
  <label for="${fid}">${label}${' *' if required else ''}</label>
  <select id="${fid}" name="${name}"${' required' if required else '' | n} ${attrs | n}\
% if error or hint:
 aria-describedby="${fid}-msg"\
% endif
% if error:
 aria-invalid="true"\
% endif
>
% for v, text in options:
    <option value="${v}"${' selected' if str(v) == str(value) else '' | n}>${text}</option>
% endfor
  </select>
% if error:
  <p class="msg error" id="${fid}-msg">${error}</p>
% elif hint:
  <p class="msg" id="${fid}-msg">${hint}</p>
% endif
</div>
</%def>

<%def name="textarea(name, label, value='', error=None, hint=None, rows=3, attrs='', id=None)">
<% fid = id or 'f-' + name; attrs = focus_attrs(ui, context.get('errors'), attrs, error) %>
<div class="field${' has-error' if error else ''}">
  <label for="${fid}">${label}</label>
  <textarea id="${fid}" name="${name}" rows="${rows}"\
% if error or hint:
 aria-describedby="${fid}-msg"\
% endif
% if error:
 aria-invalid="true"\
% endif
 ${attrs | n}>
${value}</textarea>
% if error:
  <p class="msg error" id="${fid}-msg">${error}</p>
% elif hint:
  <p class="msg" id="${fid}-msg">${hint}</p>
% endif
</div>
</%def>

<%def name="checkbox(name, label, checked=False, hint=None)">
<div class="field check">
  <input id="f-${name}" name="${name}" type="checkbox" value="1"${' checked' if checked else '' | n}>
  <label for="f-${name}">${label}</label>
% if hint:
  <p class="msg">${hint}</p>
% endif
</div>
</%def>

<%def name="form_error(error)">
% if error:
<div class="alert" role="alert">${error}</div>
% endif
</%def>

<%def name="filter_box(table_id, label='Filter this table')">
## Shown only when JavaScript runs (admin.js): narrows a long table as one types.
<div class="field js-only" hidden>
  <label for="filter-${table_id}">${label}</label>
  <input id="filter-${table_id}" class="narrow" type="search" data-filter-table="${table_id}" autocomplete="off">
</div>
</%def>
