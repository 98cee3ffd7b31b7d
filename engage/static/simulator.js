// The simulator page: each message goes to POST /staff/simulator/messages and the replies come
// back as bubbles. Every text is set with textContent: what a worker or a survey wrote is never
// read as HTML.
"use strict";
(function () {
  var root = document.getElementById("simulator");
  if (!root) {
    return;
  }
  var chat = document.getElementById("sim-chat");
  var form = document.getElementById("sim-form");
  var input = document.getElementById("sim-text");
  var sendButton = document.getElementById("sim-send");
  var status = document.getElementById("sim-status");
  var surveySelect = document.getElementById("sim-survey");
  var csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  var sessionId = newSessionId();
  var isBusy = false;

  function newSessionId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function chosenSurvey() {
    var option = surveySelect.options[surveySelect.selectedIndex];
    return { id: option.value, isDraft: option.dataset.draft === "1" };
  }

  function chosenChannel() {
    var checked = root.querySelector('input[name="channel"]:checked');
    return checked ? checked.value : "sms";
  }

  // The keyword buttons of the chosen survey; of every published one when none is chosen.
  function showKeywords() {
    var survey = chosenSurvey();
    root.querySelectorAll(".sim-keywords").forEach(function (group) {
      var isDraft = group.dataset.draft === "1";
      var shown = survey.id
        ? group.dataset.survey === survey.id && isDraft === survey.isDraft
        : !isDraft;
      group.hidden = !shown;
    });
  }

  function costLabel(segment, channel) {
    if (channel === "whatsapp") {
      return root.dataset.whatsapp;
    }
    var words = segment.segments === 1 ? root.dataset.segmentOne : root.dataset.segmentOther;
    return segment.encoding + " · " + words.replace("{num}", String(segment.segments));
  }

  function addBubble(kind, text, cost) {
    var item = document.createElement("li");
    item.className = "bubble " + kind;
    var who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = (kind === "from-worker" ? root.dataset.worker : root.dataset.engage) + ": ";
    var body = document.createElement("p");
    body.className = "text";
    body.textContent = text;
    item.appendChild(who);
    item.appendChild(body);
    if (cost) {
      var note = document.createElement("p");
      note.className = "cost";
      note.textContent = cost;
      item.appendChild(note);
    }
    chat.appendChild(item);
    chat.scrollTop = chat.scrollHeight;
  }

  function addNote(text) {
    var item = document.createElement("li");
    item.className = "chat-note";
    item.textContent = text;
    chat.appendChild(item);
    chat.scrollTop = chat.scrollHeight;
  }

  function setBusy(busy) {
    isBusy = busy;
    sendButton.disabled = busy;
    root.querySelectorAll(".sim-send").forEach(function (button) {
      button.disabled = busy;
    });
    status.textContent = busy ? root.dataset.sending : "";
    status.classList.remove("error");
  }

  function send(text) {
    if (isBusy || !text.trim()) {
      return;
    }
    var survey = chosenSurvey();
    var channel = chosenChannel();
    var payload = { session: sessionId, text: text, channel: channel };
    if (survey.id) {
      payload.survey = survey.id;
      payload.draft = survey.isDraft;
    }
    addBubble("from-worker", text, null);
    setBusy(true);
    fetch(root.dataset.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(payload),
    })
      .then(function (response) {
        return response.json().then(
          function (data) {
            return { ok: response.ok, data: data };
          },
          function () {
            return { ok: false, data: {} };
          }
        );
      })
      .then(function (result) {
        setBusy(false);
        if (!result.ok) {
          status.textContent = result.data.message || root.dataset.failed;
          status.classList.add("error");
          return;
        }
        var replies = result.data.replies || [];
        var segments = result.data.segments || [];
        if (!replies.length) {
          addNote(root.dataset.noReply);
        }
        replies.forEach(function (reply, index) {
          addBubble("from-engage", reply, segments[index] ? costLabel(segments[index], channel) : null);
        });
        showState(result.data.state);
      })
      .catch(function () {
        setBusy(false);
        status.textContent = root.dataset.failed;
        status.classList.add("error");
      });
  }

  // What the engine knows of the simulated worker after each message (or nothing yet).
  function showState(state) {
    root.querySelectorAll("#sim-state dd").forEach(function (item) {
      var value = state ? state[item.dataset.key] : null;
      item.textContent = value === null || value === undefined ? "—" : String(value);
    });
  }

  function reset() {
    sessionId = newSessionId();
    chat.textContent = "";
    showState(null);
    addNote(root.dataset.newConversation);
    status.textContent = "";
    status.classList.remove("error");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim() || isBusy) {
      return;
    }
    input.value = "";
    send(text);
    input.focus();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });
  root.querySelectorAll(".sim-send").forEach(function (button) {
    button.addEventListener("click", function () {
      send(button.dataset.text);
    });
  });
  document.getElementById("sim-reset").addEventListener("click", function () {
    reset();
    input.focus();
  });
  // Another survey is another catalog: start again with a new worker.
  surveySelect.addEventListener("change", function () {
    showKeywords();
    reset();
  });
  showKeywords();
})();
