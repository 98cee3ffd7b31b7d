// The simulator page: each message goes to POST /staff/simulator/messages and the replies come
// back as bubbles; in phone mode each key goes to POST /staff/simulator/call and what the caller
// hears comes back as one screen. Every text is set with textContent: what a worker or a survey
// wrote is never read as HTML.
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
    return {
      id: option.value,
      isDraft: option.dataset.draft === "1",
      hasVoice: option.dataset.voice === "1",
    };
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

  // The session and the chosen survey, with what else a request carries; its answer, read.
  function post(url, fields) {
    var survey = chosenSurvey();
    var payload = { session: sessionId };
    if (survey.id) {
      payload.survey = survey.id;
      payload.draft = survey.isDraft;
    }
    Object.keys(fields).forEach(function (name) {
      payload[name] = fields[name];
    });
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(payload),
    }).then(function (response) {
      return response.json().then(
        function (data) {
          return { ok: response.ok, data: data };
        },
        function () {
          return { ok: false, data: {} };
        }
      );
    });
  }

  function showFailure(message) {
    status.textContent = message || root.dataset.failed;
    status.classList.add("error");
  }

  function send(text) {
    if (isBusy || !text.trim()) {
      return;
    }
    var channel = chosenChannel();
    addBubble("from-worker", text, null);
    setBusy(true);
    post(root.dataset.url, { text: text, channel: channel })
      .then(function (result) {
        setBusy(false);
        if (!result.ok) {
          showFailure(result.data.message);
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
        showFailure();
      });
  }

  // What the engine knows of the simulated worker after each message (or nothing yet).
  function showState(state) {
    root.querySelectorAll("#sim-state dd").forEach(function (item) {
      var value = state ? state[item.dataset.key] : null;
      item.textContent = value === null || value === undefined ? "—" : String(value);
    });
  }

  // -- the phone: one screen of a call at a time ---------------------------------------------

  var call = document.getElementById("sim-call");
  var heard = document.getElementById("sim-heard");
  var waitsNote = document.getElementById("sim-waits");
  var pressedNote = document.getElementById("sim-pressed");
  var keysShown = document.getElementById("sim-keys");
  var maxKeys = Number(call.dataset.maxKeys);
  var KEYPAD = "0123456789*#";
  var waiting = "none"; // before the first call
  var gathered = ""; // keys pressed before the #
  var WAITS = {
    none: "waitsNone",
    key: "waitsKey",
    keys: "waitsKeys",
    voice_note: "waitsVoiceNote",
    help_line: "waitsHelpLine",
    end: "waitsEnd",
  };
  // What each action needs the screen to wait for (the call button always works).
  var TAKES = {
    timeout: ["key", "keys"],
    voice_note: ["voice_note"],
    silence: ["voice_note"],
    after_dial: ["help_line"],
    hang_up: ["key", "keys", "voice_note", "help_line"],
  };

  function isPhoneMode() {
    return chosenChannel() === "voice";
  }

  function takesKey(key) {
    return waiting === "key" || waiting === "keys" || (waiting === "voice_note" && key === "#");
  }

  // The controls that fit what the screen waits for; focus stays on the phone.
  function showControls() {
    var focused = document.activeElement;
    call.querySelectorAll(".keypad button").forEach(function (button) {
      button.disabled = !takesKey(button.dataset.key);
    });
    call.querySelectorAll("button[data-action]").forEach(function (button) {
      var takes = TAKES[button.dataset.action];
      button.disabled = Boolean(takes) && takes.indexOf(waiting) < 0;
    });
    if (focused && call.contains(focused) && focused.disabled) {
      var next =
        call.querySelector(".keypad button:not([disabled])") ||
        call.querySelector(".call-actions button:not([disabled])") ||
        call.querySelector('button[data-action="start"]');
      next.focus();
    }
  }

  function showKeys() {
    keysShown.textContent = gathered;
  }

  function showScreen(screen) {
    heard.textContent = "";
    (screen ? screen.prompts : []).forEach(function (prompt) {
      var item = document.createElement("li");
      var words = document.createElement("p");
      words.className = "text";
      words.textContent = prompt.text;
      item.appendChild(words);
      if (prompt.audio) {
        var player = document.createElement("audio");
        player.controls = true;
        player.preload = "none";
        player.src = prompt.audio;
        item.appendChild(player);
      }
      heard.appendChild(item);
    });
    waiting = screen ? screen.waits_for : "none";
    var note = call.dataset[WAITS[waiting]] || "";
    waitsNote.textContent = note.replace("{number}", (screen && screen.help_line) || "");
    gathered = "";
    showKeys();
    showControls();
  }

  function act(action, digits, label) {
    if (isBusy) {
      return;
    }
    setBusy(true);
    post(call.dataset.url, { action: action, digits: digits })
      .then(function (result) {
        setBusy(false);
        if (!result.ok) {
          showFailure(result.data.message);
          if (result.data.error === "no_call") {
            showScreen(null);
          }
          return;
        }
        pressedNote.textContent = label;
        showScreen(result.data);
        showState(result.data.state);
      })
      .catch(function () {
        setBusy(false);
        showFailure();
      });
  }

  function pressKey(key) {
    if (isBusy || !takesKey(key)) {
      return;
    }
    var label = function (keys) {
      return call.dataset.youPressed.replace("{keys}", keys);
    };
    if (waiting === "key") {
      act("keys", key, label(key));
    } else if (waiting === "voice_note") {
      act("silence", "", label(key)); // # ends a recording before anything was said
    } else if (key === "#") {
      act("keys", gathered, label(gathered + key));
    } else if (gathered.length < maxKeys) {
      gathered += key;
      showKeys();
    }
  }

  // Text mode or phone mode; a survey not offered by phone says so instead of the keypad.
  function showMode() {
    var isPhone = isPhoneMode();
    var isRefused = isPhone && !chosenSurvey().hasVoice;
    chat.hidden = isPhone;
    form.hidden = isPhone;
    call.hidden = !isPhone;
    document.getElementById("sim-start").hidden = isPhone;
    document.getElementById("sim-help-text").hidden = isPhone;
    document.getElementById("sim-help-phone").hidden = !isPhone;
    document.getElementById("sim-call-refused").hidden = !isRefused;
    document.getElementById("sim-call-body").hidden = isRefused;
  }

  call.querySelectorAll(".keypad button").forEach(function (button) {
    button.addEventListener("click", function () {
      pressKey(button.dataset.key);
    });
  });
  call.querySelectorAll("button[data-action]").forEach(function (button) {
    button.addEventListener("click", function () {
      var action = button.dataset.action;
      // No key before the timeout: Twilio sends what was keyed so far.
      var digits = action === "timeout" && waiting === "keys" ? gathered : "";
      act(action, digits, action === "start" ? "" : button.textContent);
    });
  });
  // The keys of the computer's keyboard press the phone's.
  call.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || KEYPAD.indexOf(event.key) < 0) {
      return;
    }
    event.preventDefault();
    pressKey(event.key);
  });
  root.querySelectorAll('input[name="channel"]').forEach(function (radio) {
    radio.addEventListener("change", showMode);
  });

  function reset() {
    sessionId = newSessionId();
    chat.textContent = "";
    showState(null);
    pressedNote.textContent = "";
    showScreen(null);
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
    (isPhoneMode() ? call.querySelector('button[data-action="start"]') : input).focus();
  });
  // Another survey is another catalog: start again with a new worker.
  surveySelect.addEventListener("change", function () {
    showKeywords();
    showMode();
    reset();
  });
  showKeywords();
  showMode();
})();
