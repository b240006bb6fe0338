## A phone's stored files of one kind: what is served now, then every version with its diff.
% for name, body, versions in files:
<h3 class="mono">${mac}-${name}</h3>
% if body is not None:
<pre class="file">${body}</pre>
<form method="post" action="${ui.url_for('stored_clear', mac=mac, directory=kind.directory)}" class="actions">
  <input type="hidden" name="csrf" value="${ui.csrf}">
  <input type="hidden" name="name" value="${name}">
  <button type="submit" class="danger">Stop serving ${name}</button>
</form>
% elif versions:
<p class="muted">Cleared: nothing is served; the history shows what it held.</p>
% else:
<p class="muted">Nothing stored.</p>
% endif
% if versions:
<details>
<summary>History: ${len(versions)} version(s)</summary>
% for v in versions:
<p><strong>v${v.number}</strong> ${v.stored_at} UTC · ${'cleared' if v.cleared else '%d bytes' % v.size} · <span class="muted">${v.source}</span></p>
% if v.diff:
<pre class="file diff">\
% for cls, line in v.diff:
<span class="${cls}">${line}</span>
% endfor
% if not files:
<p class="muted">Nothing stored.</p>
% endif
</pre>
% endif
% endfor
% if not files:
<p class="muted">Nothing stored.</p>
% endif
</details>
% endif
% endfor
% if not files:
<p class="muted">Nothing stored.</p>
% endif
