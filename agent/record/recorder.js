// Injected into every page of a recording (`agent.record.recorder`): an overlay asks the person why, and each click, typed
// search and exit is sent to Python through a binding. %ANNOTATE%, %ASK%, %OVERLAY% and %BINDING% are filled in there.
(() => {
  if (window.top !== window || window.__shopR1Doc) return;
  const doc = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
  Object.defineProperty(window, "__shopR1Doc", { value: doc });
  const annotate = (%ANNOTATE%);
  const ASK = %ASK%;
  const TEXT_TYPES = new Set(["", "text", "search", "email", "number", "tel", "url", "password"]);
  const ACTIONABLE = "a[href], button, summary, textarea, input:not([type=hidden]), [onclick], [role=button], "
    + "[role=link], [role=checkbox], [role=radio], [role=tab], [role=menuitem], [role=option], [role=switch]";
  const dirty = new Set();
  let lastSubmit = null;
  let box = null;
  const isText = (el) => !!el && ((el.tagName === "INPUT" && TEXT_TYPES.has((el.type || "").toLowerCase()))
                                  || el.tagName === "TEXTAREA");
  const chain = (el) => {
    const out = [];
    for (let n = el; n && n.nodeType === 1 && out.length < 24; n = n.parentElement) {
      const id = n.getAttribute("data-shop-id");
      if (id !== null) out.push(id);
    }
    return out;
  };
  const fromRecorder = (e) => e.composedPath().some((n) => n && n.id === "%OVERLAY%");
  const recent = (form) => lastSubmit && lastSubmit.form === form && performance.now() - lastSubmit.t < 500;
  const send = (kind, el, extra) => {
    const why = box && box.value.trim() ? box.value.trim() : null;
    if (box) box.value = "";
    window.%BINDING%(Object.assign({ kind, doc, ids: chain(el), url: location.href, rationale: why }, extra || {}));
  };
  document.addEventListener("input", (e) => { if (isText(e.target)) dirty.add(e.target); }, true);
  document.addEventListener("keydown", (e) => {
    const el = e.target;
    if (e.key !== "Enter" || e.isComposing || fromRecorder(e) || !isText(el) || el.tagName === "TEXTAREA") return;
    lastSubmit = { form: el.form, t: performance.now() };
    send("type_and_submit", el, { text: el.value });
  }, true);
  document.addEventListener("click", (e) => {
    if (fromRecorder(e) || !(e.target instanceof Element)) return;
    const el = e.target;
    if (el.closest("select")) return;  // options are reported by "change"
    const target = el.closest(ACTIONABLE);
    if (!target || isText(target)) return;  // blank space or focusing a text box: not an action
    const button = el.closest("button, input[type=submit], input[type=image]");
    const submits = !!button && !!button.form && (button.tagName === "INPUT"
                    || (button.getAttribute("type") || "submit").toLowerCase() === "submit");
    if (submits && recent(button.form)) return;  // the click a browser fires on the default button for Enter
    if (submits) {
      lastSubmit = { form: button.form, t: performance.now() };
      const edited = [...dirty].filter((i) => i.isConnected && i.form === button.form);
      if (edited.length === 1) { send("type_and_submit", edited[0], { text: edited[0].value, via: "button" }); return; }
    }
    send("click", el);
  }, true);
  document.addEventListener("change", (e) => {
    const el = e.target;
    if (el.tagName === "SELECT" && !fromRecorder(e)) send("click", el.selectedOptions[0] || el, { via: "change" });
  }, true);
  document.addEventListener("submit", (e) => {
    if (recent(e.target)) return;
    const active = document.activeElement;
    if (isText(active) && active.form === e.target) {
      send("type_and_submit", active, { text: active.value, via: "submit" });
    } else if (e.submitter) send("click", e.submitter, { via: "submit" });
  }, true);
  const mount = () => {
    const host = document.createElement("div");
    host.id = "%OVERLAY%";
    const root = host.attachShadow({ mode: "open" });
    root.innerHTML = `<style>
      .w { position: fixed; right: 12px; bottom: 12px; z-index: 2147483647; width: 260px; padding: 8px;
           background: #fff; border: 1px solid #c9ced8; border-radius: 8px; box-shadow: 0 4px 14px rgba(0,0,0,.15);
           font: 12px system-ui, sans-serif; color: #333; }
      textarea { width: 100%; box-sizing: border-box; height: 48px; font: inherit; resize: vertical; }
      </style><div class="w"><label>Why? (optional, recorded with your next action)
      <textarea data-shop-r1-rationale placeholder="I want to compare prices..."></textarea></label></div>`;
    document.documentElement.appendChild(host);
    box = root.querySelector("textarea");
    box.addEventListener("input", () => window.%BINDING%({ kind: "draft", doc, rationale: box.value.trim() || null }));
  };
  const ready = () => { annotate(); if (ASK) mount(); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready); else ready();
})();
