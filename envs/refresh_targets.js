// The absolute URLs the page's <meta http-equiv=refresh> tags will go to.
() => [...document.querySelectorAll('meta[http-equiv]')]
  .filter(m => m.httpEquiv.toLowerCase() === 'refresh')
  .map(m => (m.content.match(/url\s*=\s*['"]?([^'"]+)/i) || [])[1])
  .filter(Boolean)
  .map(u => { try { return new URL(u.trim(), location.href).href } catch (e) { return '' } })
