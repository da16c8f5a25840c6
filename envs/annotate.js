// Stamps every element of the page with a `data-shop-id` (the env clicks and types by it), marks what is hidden,
// mirrors live form state into attributes, and returns the page's HTML. `envs.browser` evaluates it after each load.
() => {
  const interactive = new Set(['A', 'BUTTON', 'INPUT', 'SELECT', 'TEXTAREA', 'OPTION', 'SUMMARY']);
  let i = 0;
  for (const el of document.querySelectorAll('*')) {
    el.setAttribute('data-shop-id', String(i++));
    el.removeAttribute('data-shop-hidden');
    if (el.tagName === 'A' && el.hasAttribute('target')) el.setAttribute('target', '_self');  // no popups
    if (el.tagName === 'INPUT') {
      const t = (el.type || 'text').toLowerCase();
      if (t === 'checkbox' || t === 'radio') {
        if (el.checked) el.setAttribute('checked', ''); else el.removeAttribute('checked');
      }
      else if (t !== 'password' && t !== 'file') el.setAttribute('value', el.value);
    } else if (el.tagName === 'TEXTAREA') { el.textContent = el.value; }
    else if (el.tagName === 'OPTION') {
      if (el.selected) el.setAttribute('selected', ''); else el.removeAttribute('selected');
    }
    if (!el.closest('body') || el.tagName === 'OPTION') continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') {
      el.setAttribute('data-shop-hidden', '1');
      continue;
    }
    if (interactive.has(el.tagName) || el.getAttribute('role')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0 && style.display !== 'contents') el.setAttribute('data-shop-hidden', '1');
    }
  }
  const dt = document.doctype;
  return (dt ? '<!DOCTYPE ' + dt.name + '>' : '') + document.documentElement.outerHTML;
}
