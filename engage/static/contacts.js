// The contacts pages: a revealed number hides itself after its time, and an import's page
// follows the import (its JSON status) until it is done.
"use strict";
(function () {
  var reveal = document.getElementById("reveal");
  if (reveal) {
    var texts = document.getElementById("reveal-texts").content.firstElementChild;
    var countdown = document.getElementById("reveal-countdown");
    var deadline = Date.now() + parseInt(reveal.dataset.seconds, 10) * 1000;
    var timer = null;
    var hide = function () {
      clearInterval(timer);
      var link = document.getElementById("revealed-number");
      if (link) {
        var masked = document.createElement("span");
        masked.textContent = reveal.dataset.masked;
        link.replaceWith(masked);
      }
      countdown.textContent = "";
      document.getElementById("reveal-gone").textContent = texts.dataset.gone;
      // Back to the contact, in place of this page: "back" does not bring the number again.
      window.location.replace(reveal.dataset.return);
    };
    var tick = function () {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      var time = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      countdown.textContent = texts.dataset.left.replace("{time}", time);
      if (left === 0) {
        hide();
      }
    };
    timer = setInterval(tick, 250);
    // A page brought back from the browser's history never shows the number again.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        hide();
      }
    });
  }

  var box = document.getElementById("import");
  if (box && (box.dataset.state === "queued" || box.dataset.state === "running")) {
    var bar = document.getElementById("import-progress");
    var count = document.getElementById("import-count");
    var state = document.getElementById("import-state");
    var words = document.getElementById("import-texts").content.firstElementChild;
    var poll = function () {
      fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(response.status);
          }
          return response.json();
        })
        .then(function (status) {
          if (status.state !== "queued" && status.state !== "running") {
            window.location.reload();  // the page says what the import did
            return;
          }
          bar.max = status.numbers;
          bar.value = status.done;
          count.textContent = words.dataset.count
            .replace("{done}", status.done)
            .replace("{total}", status.numbers);
          if (status.state === "running") {
            state.textContent = words.dataset.running;
          }
          setTimeout(poll, 1000);
        })
        .catch(function () {
          setTimeout(poll, 3000);  // the server or the network is busy: keep following
        });
    };
    setTimeout(poll, 500);
  }
})();
