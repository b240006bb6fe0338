<%inherit file="/admin_layout.mako"/>
<%namespace name="f" file="/admin_forms.mako"/>
<%def name="title()">${heading}</%def>
<section class="card narrow">
<h1>${heading}</h1>
${f.form_error(context.get('error'))}
<p>${message}</p>
<form method="post" action="${action}" class="actions">
  ${f.csrf()}
  <button type="submit" class="danger">Remove</button>
  <a href="${back}">Cancel</a>
</form>
</section>
