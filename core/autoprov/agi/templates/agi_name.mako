<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">Caller name ${values['number']}</%def>
<section class="card narrow">
<h1>Calls from <span class="mono">${values['number']}</span></h1>
<form method="post" action="${ui.url_for('caller_name', number=values['number'])}" novalidate>
  ${f.csrf()}
  ${f.field('name', 'Name shown', values['name'], errors.get('name'), required=True, attrs='maxlength="80"')}
  <div class="actions">
    <button type="submit" class="primary">Save</button>
    <button type="submit" name="action" value="delete" class="danger">Remove</button>
    <a href="${ui.url_for('caller_names')}">Cancel</a>
  </div>
</form>
</section>
