// jobkeeper dashboard: live updates by polling small server-rendered HTML fragments. No build step.
// An element with data-poll="URL" has its contents replaced by that URL's HTML every data-every ms
// (default 3000). The fragments are rendered and escaped by the server like every page. Polling pauses
// while the tab is hidden, and stops once a fragment marks itself final (data-final).
(function () {
  "use strict";

  function poll(element) {
    var url = element.getAttribute("data-poll");
    var every = parseInt(element.getAttribute("data-every") || "3000", 10);
    var timer = null;

    function schedule() {
      timer = window.setTimeout(tick, every);
    }

    function tick() {
      if (document.hidden) {
        schedule();
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (response.status === 401) {
            window.location.reload(); // the session ended: the page itself redirects to sign-in
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== undefined) {
            var focused = document.activeElement && element.contains(document.activeElement)
              ? document.activeElement.id : null;
            element.innerHTML = html;
            if (focused) {
              var again = document.getElementById(focused);
              if (again) { again.focus(); }
            }
            if (element.querySelector("[data-final]")) {
              return; // finished: nothing will change any more
            }
          }
          schedule();
        })
        .catch(schedule);
    }

    schedule();
    return function () { window.clearTimeout(timer); };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var elements = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < elements.length; i++) {
      poll(elements[i]);
    }
  });
})();
