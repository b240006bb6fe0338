<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%namespace name="p" file="/prov_phone_fields.mako"/>
<%def name="title()">Add a phone</%def>
<section class="card">
<h1>Add a phone</h1>
${f.form_error(errors.get(''))}
% if errors:
<p class="alert" role="alert">Nothing was saved: correct the fields marked below.</p>
% endif
<form method="post" action="${ui.url_for('phone_new')}" novalidate>
  ${f.csrf()}
  ${p.fields(values, errors, slots, models, extensions, True)}
  <div class="actions">
    <button type="submit" class="primary">Add phone</button>
    <a href="${ui.url_for('extension_new', _query={'back': 'phone_new'})}">New extension…</a>
    <a href="${ui.url_for('phones')}">Cancel</a>
  </div>
</form>
</section>
