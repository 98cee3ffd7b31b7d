// Campaign pages: times in the reader's own zone, the new-campaign form's time fields (and its
// reminder fields, which a campaign by phone has none of), a confirmation before cancelling, and
// a campaign's counts updated from progress.json.
"use strict";

(function () {
  // Times are written in UTC by the server; shown in the browser's own time zone.
  document.querySelectorAll("time[datetime]").forEach(function (element) {
    var moment = new Date(element.getAttribute("datetime"));
    if (!isNaN(moment.getTime())) {
      element.title = element.textContent;
      element.textContent = moment.toLocaleString(document.documentElement.lang || undefined, {
        dateStyle: "medium",
        timeStyle: "short",
      });
    }
  });

  // New campaign: the time fields only matter for "at a time"; the zone defaults to the browser's.
  var form = document.getElementById("campaign-form");
  if (form) {
    var startTime = document.getElementById("start-time");
    var startAt = document.getElementById("start-at");
    var showTime = function () {
      startTime.hidden = !startAt.checked;
    };
    form.querySelectorAll("input[name=start]").forEach(function (radio) {
      radio.addEventListener("change", showTime);
    });
    showTime();
    // Fields that do not apply to the chosen channel are hidden, and disabled so they are not sent.
    var channelFields = form.querySelectorAll("fieldset[data-not-for]");
    var showChannelFields = function () {
      var checked = form.querySelector("input[name=channel]:checked");
      var channel = checked ? checked.value : "";
      channelFields.forEach(function (fieldset) {
        var off = fieldset.getAttribute("data-not-for") === channel;
        fieldset.hidden = off;
        fieldset.disabled = off;
      });
    };
    form.querySelectorAll("input[name=channel]").forEach(function (radio) {
      radio.addEventListener("change", showChannelFields);
    });
    showChannelFields();
    var zone = document.getElementById("time_zone");
    var previewed = document.getElementById("previewed");
    if (zone && previewed && !previewed.value) {
      var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (Array.prototype.some.call(zone.options, function (o) { return o.value === browserZone; })) {
        zone.value = browserZone;
      }
    }
  }

  // Cancelling drops every unsent message: ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (confirmed) {
    confirmed.addEventListener("submit", function (event) {
      if (!window.confirm(confirmed.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  // A campaign's page: its counts, bars, state and buttons follow progress.json.
  var page = document.getElementById("campaign");
  if (!page) {
    return;
  }
  var url = page.getAttribute("data-progress-url");
  var ENDED = ["finished", "cancelled"];
  var FAST = 3000;
  var SLOW = 15000;

  function setOf(id, done, total) {
    var element = document.getElementById(id);
    element.textContent = element
      .getAttribute("data-pattern")
      .replace("%(done)s", String(done))
      .replace("%(total)s", String(total));
  }

  function show(counts) {
    Object.keys(counts).forEach(function (key) {
      var element = document.querySelector('[data-count="' + key + '"]');
      if (element) {
        element.textContent = String(counts[key]);
      }
    });
    var total = counts.contacts || 1;
    var invited = document.getElementById("bar-invited");
    var sent = document.getElementById("bar-sent");
    invited.max = sent.max = total;
    // A campaign by phone counts calls placed instead of invitations sent.
    var done = counts[sent.getAttribute("data-key") || "sent"];
    invited.value = counts.invited;
    sent.value = done;
    setOf("writing-text", counts.invited, counts.contacts);
    setOf("sent-text", done, counts.contacts);
    document.getElementById("writing").hidden = counts.invited >= counts.contacts;
    var state = document.getElementById("state");
    state.textContent = page.getAttribute("data-label-" + counts.state) || counts.state;
    state.className = "state state-" + counts.state;
    page.querySelectorAll("form[data-states]").forEach(function (control) {
      control.hidden = control.getAttribute("data-states").split(" ").indexOf(counts.state) < 0;
    });
    document.getElementById("paused-note").hidden = counts.state !== "paused";
    var updated = document.getElementById("updated");
    updated.textContent = updated.getAttribute("data-text").replace(
      "%(time)s",
      new Date().toLocaleTimeString(document.documentElement.lang || undefined)
    );
  }

  function poll() {
    var asked = Date.now();
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("progress: " + response.status);
        }
        return response.json();
      })
      .then(function (counts) {
        show(counts);
        // A big campaign takes the server a moment to count: ask less often, not more.
        var pause = Math.max(FAST, 5 * (Date.now() - asked));
        window.setTimeout(poll, ENDED.indexOf(counts.state) >= 0 ? SLOW : pause);
      })
      .catch(function () {
        window.setTimeout(poll, SLOW);
      });
  }

  window.setTimeout(poll, FAST);
})();
