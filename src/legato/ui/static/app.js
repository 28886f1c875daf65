// legato dashboard: live refresh and confirmations, in plain JavaScript.
//
// An element with data-live="URL" is fetched again every data-refresh seconds
// (on <body>) with the header X-Legato-Fragment: 1, and its content replaced
// when it changed. It pauses while the tab is hidden, while a field inside it
// has the focus, and when the "live" box is unticked; it stops once the
// fragment carries data-finished. Forms with data-confirm ask first.
(function () {
  "use strict";
  const period = Number(document.body.dataset.refresh || 0) * 1000;
  const toggle = document.getElementById("live-toggle");

  function typing(el) {
    const active = document.activeElement;
    return active && el.contains(active) && active.matches("input, textarea, select");
  }

  async function refresh(el) {
    if (document.hidden || typing(el) || (toggle && !toggle.checked)) return true;
    let response;
    try {
      response = await fetch(el.dataset.live, { headers: { "X-Legato-Fragment": "1" } });
    } catch (err) {
      return true; // the server is restarting: try again next time
    }
    if (!response.ok) return true;
    const html = await response.text();
    if (html !== el.dataset.shown) {
      const open = Array.from(el.querySelectorAll("details[open][data-key]"), (d) => d.dataset.key);
      el.innerHTML = html;
      el.dataset.shown = html;
      for (const key of open) {
        const d = el.querySelector(`details[data-key="${CSS.escape(key)}"]`);
        if (d) d.open = true;
      }
      el.dispatchEvent(new CustomEvent("legato:refreshed", { bubbles: true }));
    }
    return !el.querySelector("[data-finished]");
  }

  function follow(el) {
    const tick = async () => {
      if (await refresh(el)) setTimeout(tick, period);
    };
    if (!el.querySelector("[data-finished]")) setTimeout(tick, period);
  }

  if (period > 0) document.querySelectorAll("[data-live]").forEach(follow);

  document.addEventListener("submit", (event) => {
    const message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
