// The survey editor: questions and choices added, moved and removed in the page; the check run
// as the author types, its problems shown beside their fields and the SMS cost of every message
// under it; the draft saved on its own. Without this script the same form works by posting.
//
// documentFromForm() must build the document exactly as engage/web/survey_form.py does.
(function () {
  "use strict";

  var form = document.getElementById("editor");
  if (!form) {
    return;
  }
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var texts = form.dataset;
  var revisionInput = document.getElementById("revision");
  var questionList = document.getElementById("question-list");
  var statusLine = document.getElementById("save-status");

  var TYPES = ["choice", "multi", "yes_no", "number", "text"];
  var CHOICE_TYPES = ["choice", "multi"];
  var PROFILE_TYPES = ["choice", "multi", "yes_no"];
  var SPELLINGS = ["as_written", "plain"];
  var CHECK_DELAY = 400;
  var SAVE_DELAY = 1500;

  // --- the document --------------------------------------------------------------------------

  function splitWords(value) {
    return value.split(",").map(function (w) { return w.trim(); }).filter(Boolean);
  }

  function splitLanguages(value) {
    return value.split(/[\s,]+/).map(function (c) { return c.trim().toLowerCase(); }).filter(Boolean);
  }

  function numberOrText(value) {
    value = value.trim();
    if (/^-?[0-9]+(\.[0-9]+)?$/.test(value)) {
      return value.indexOf(".") >= 0 ? parseFloat(value) : parseInt(value, 10);
    }
    return value;
  }

  function formValues() {
    var values = new Map();
    new FormData(form).forEach(function (value, key) {
      if (!values.has(key)) {
        values.set(key, String(value));
      }
    });
    return values;
  }

  function isEmpty(object) {
    return Object.keys(object).length === 0;
  }

  function titleLanguages(values) {
    var found = [];
    values.forEach(function (_value, key) {
      if (key.indexOf("title.") === 0) { found.push(key.slice(6)); }
    });
    return found;
  }

  function documentFromForm() {
    var values = formValues();
    var get = function (key) { return values.has(key) ? values.get(key) : ""; };
    var languages = splitLanguages(get("languages"));
    // Languages left empty by mistake: what was written in each language stays.
    var writtenIn = languages.length ? languages : titleLanguages(values);
    var textsOf = function (path) {
      var found = {};
      writtenIn.forEach(function (lang) {
        var text = get(path + "." + lang).trim();
        if (text) { found[lang] = text; }
      });
      return found;
    };
    var wordsOf = function (path) {
      var found = {};
      writtenIn.forEach(function (lang) {
        var words = splitWords(get(path + "." + lang));
        if (words.length) { found[lang] = words; }
      });
      return found;
    };
    var doc = {
      id: form.dataset.surveyId,
      title: textsOf("title"),
      languages: languages,
      keywords: {},
    };
    writtenIn.forEach(function (lang) { doc.keywords[lang] = splitWords(get("keywords." + lang)); });
    if (get("repeat")) { doc.repeat = true; }
    var spelling = get("sms_spelling");
    if (SPELLINGS.indexOf(spelling) >= 0 && spelling !== "as_written") { doc.sms_spelling = spelling; }
    ["whatsapp_template", "intro"].forEach(function (field) {
      var found = textsOf(field);
      if (!isEmpty(found)) { doc[field] = found; }
    });
    var indexes = [];
    values.forEach(function (_value, key) {
      var m = /^questions\.([0-9]+)\.type$/.exec(key);
      if (m && indexes.indexOf(+m[1]) < 0) { indexes.push(+m[1]); }
    });
    indexes.sort(function (a, b) { return a - b; });
    doc.questions = indexes.map(function (i) {
      return questionFrom(values, get, "questions." + i, textsOf, wordsOf);
    });
    var closing = textsOf("closing");
    if (!isEmpty(closing)) { doc.closing = closing; }
    return doc;
  }

  function questionFrom(values, get, path, textsOf, wordsOf) {
    var kind = get(path + ".type");
    var question = { id: get(path + ".id").trim(), type: kind, text: textsOf(path + ".text") };
    var profile = get(path + ".profile").trim();
    if (PROFILE_TYPES.indexOf(kind) >= 0 && profile) {
      question.profile = profile;
      var maxAge = get(path + ".max_age_days").trim();
      if (maxAge) { question.max_age_days = numberOrText(maxAge); }
    }
    if (get(path + ".optional")) { question.optional = true; }
    var when = get(path + ".when").trim();
    if (when) { question.when = when; }
    if (CHOICE_TYPES.indexOf(kind) >= 0) {
      var positions = [];
      var pattern = new RegExp("^" + path.replace(/\./g, "\\.") + "\\.choices\\.([0-9]+)\\.value$");
      values.forEach(function (_value, key) {
        var m = pattern.exec(key);
        if (m && positions.indexOf(+m[1]) < 0) { positions.push(+m[1]); }
      });
      positions.sort(function (a, b) { return a - b; });
      question.choices = positions.map(function (j) {
        var choicePath = path + ".choices." + j;
        var choice = { value: get(choicePath + ".value").trim(), label: textsOf(choicePath + ".label") };
        var match = wordsOf(choicePath + ".match");
        if (!isEmpty(match)) { choice.match = match; }
        if (kind === "multi" && get(choicePath + ".exclusive")) { choice.exclusive = true; }
        return choice;
      });
    }
    if (kind === "number") {
      ["min", "max"].forEach(function (bound) {
        var value = get(path + "." + bound).trim();
        if (value) { question[bound] = numberOrText(value); }
      });
      var bins = splitWords(get(path + ".bins"));
      if (bins.length) { question.bins = bins.map(numberOrText); }
      var units = wordsOf(path + ".wrong_units");
      if (!isEmpty(units)) { question.wrong_units = units; }
    }
    return question;
  }

  // --- questions and choices in the page -------------------------------------------------------

  function questions() {
    return Array.prototype.slice.call(questionList.querySelectorAll(":scope > fieldset.question"));
  }

  var RENAMED = ["name", "id", "for", "data-path", "list", "aria-describedby", "href"];

  function rewrite(root, rules) {
    var elements = [root].concat(Array.prototype.slice.call(root.querySelectorAll("*")));
    elements.forEach(function (el) {
      var names = el.tagName === "BUTTON" ? RENAMED.concat(["value"]) : RENAMED;
      names.forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value === null) { return; }
        var renamed = value;
        rules.forEach(function (rule) { renamed = renamed.replace(rule[0], rule[1]); });
        if (renamed !== value) { el.setAttribute(attr, renamed); }
      });
    });
  }

  // Every field is named by its path: after a move, a removal or an addition the paths follow
  // the new positions.
  function renumber() {
    questions().forEach(function (fieldset, i) {
      rewrite(fieldset, [
        [/questions([.-])([0-9]+|__Q__)/g, "questions$1" + i],
        [/^question-([0-9]+|__Q__)$/, "question-" + i],
        [/^(delete_question|up|down|add_choice):([0-9]+|__Q__)$/, "$1:" + i],
        [/^delete_choice:([0-9]+|__Q__):/, "delete_choice:" + i + ":"],
      ]);
      fieldset.querySelector(".q-number").textContent = String(i + 1);
      fieldset.querySelectorAll("li.choice").forEach(function (item, j) {
        rewrite(item, [
          [/choices([.-])([0-9]+|__C__)/g, "choices$1" + j],
          [/^delete_choice:([0-9]+):([0-9]+|__C__)$/, "delete_choice:$1:" + j],
        ]);
      });
    });
  }

  function freshQuestionId() {
    var taken = questions().map(function (fs) { return fs.querySelector(".question-id").value.trim(); });
    var number = taken.length + 1;
    while (taken.indexOf("q" + number) >= 0) { number += 1; }
    return "q" + number;
  }

  function addChoice(fieldset, focus) {
    var item = document.getElementById("choice-template").content.querySelector("li.choice").cloneNode(true);
    fieldset.querySelector(".choice-list").appendChild(item);
    renumber();
    if (focus) { item.querySelector("input").focus(); }
  }

  function setType(fieldset, kind) {
    if (TYPES.indexOf(kind) < 0) { return; }
    fieldset.dataset.type = kind;
    fieldset.querySelector("select.question-type").value = kind;
    if (CHOICE_TYPES.indexOf(kind) >= 0 && !fieldset.querySelector("li.choice")) {
      addChoice(fieldset, false);
      addChoice(fieldset, false);
    }
  }

  function addQuestion() {
    var kind = document.getElementById("new-question-type").value;
    var fieldset = document.getElementById("question-template").content
      .querySelector("fieldset.question").cloneNode(true);
    fieldset.querySelector(".question-id").value = freshQuestionId();
    questionList.appendChild(fieldset);
    renumber();
    setType(fieldset, kind);
    fieldset.querySelector("textarea").focus();
  }

  function questionOf(el) {
    return el.closest("fieldset.question");
  }

  function onAction(button) {
    var action = button.value;
    var fieldset = questionOf(button);
    if (action === "add_question") {
      addQuestion();
    } else if (action.indexOf("add_choice:") === 0) {
      addChoice(fieldset, true);
    } else if (action.indexOf("delete_choice:") === 0) {
      var item = button.closest("li.choice");
      var next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      renumber();
      (next ? next.querySelector("input") : fieldset.querySelector(".add-choice")).focus();
    } else if (action.indexOf("up:") === 0 || action.indexOf("down:") === 0) {
      var isUp = action.indexOf("up:") === 0;
      var other = isUp ? fieldset.previousElementSibling : fieldset.nextElementSibling;
      if (!other) { return; }
      if (isUp) {
        questionList.insertBefore(fieldset, other);
      } else {
        questionList.insertBefore(other, fieldset);
      }
      renumber();
      button.focus();
      fieldset.scrollIntoView({ block: "nearest" });
    } else if (action.indexOf("delete_question:") === 0) {
      var following = fieldset.nextElementSibling || fieldset.previousElementSibling;
      fieldset.remove();
      renumber();
      (following ? following.querySelector(".question-id") : document.getElementById("add-question")).focus();
    } else {
      return;
    }
    changed();
  }

  // --- what `when` may name ----------------------------------------------------------------------

  function refreshWhenNames() {
    var known = [];
    var conditions = [];
    questions().forEach(function (fieldset) {
      var datalist = fieldset.querySelector("datalist.when-names");
      datalist.replaceChildren.apply(datalist, conditions.map(function (condition) {
        var option = document.createElement("option");
        option.value = condition;
        return option;
      }));
      var names = fieldset.querySelector(".names");
      if (known.length) {
        var parts = [];
        known.forEach(function (name, i) {
          var code = document.createElement("code");
          code.textContent = name;
          if (i) { parts.push(", "); }
          parts.push(code);
        });
        names.replaceChildren.apply(names, parts);
      } else {
        names.textContent = texts.tNoneYet;
      }
      var kind = fieldset.dataset.type;
      var values = [];
      if (kind === "yes_no") {
        values = ["yes", "no"];
      } else if (CHOICE_TYPES.indexOf(kind) >= 0) {
        fieldset.querySelectorAll("li.choice input[name$='.value']").forEach(function (input) {
          if (input.value.trim()) { values.push(input.value.trim()); }
        });
      }
      var profile = fieldset.querySelector(".profile-key");
      var keys = [fieldset.querySelector(".question-id").value.trim()];
      if (PROFILE_TYPES.indexOf(kind) >= 0) { keys.push(profile.value.trim()); }
      keys.forEach(function (key) {
        if (!key || known.indexOf(key) >= 0) { return; }
        known.push(key);
        if (kind === "multi") {
          values.forEach(function (v) { conditions.push("'" + v + "' in " + key); });
        } else if (kind === "number") {
          conditions.push(key + " >= 1");
        } else {
          values.forEach(function (v) { conditions.push(key + " == '" + v + "'"); });
        }
      });
    });
  }

  // --- the check ---------------------------------------------------------------------------------

  function isDisplayed(el) {
    for (var node = el; node && node !== form; node = node.parentElement) {
      if (getComputedStyle(node).display === "none") { return false; }
    }
    return true;
  }

  // The field a problem is shown beside: its own, else its nearest ancestor on the page.
  function holderOf(path) {
    while (path) {
      var el = form.querySelector('[data-path="' + CSS.escape(path) + '"]');
      if (el && isDisplayed(el)) { return el; }
      path = path.indexOf(".") >= 0 ? path.slice(0, path.lastIndexOf(".")) : "";
    }
    return null;
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_m, name) { return String(values[name]); });
  }

  function showProblems(problems) {
    form.querySelectorAll(".field-problems").forEach(function (list) { list.replaceChildren(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var summary = document.getElementById("summary-list");
    summary.replaceChildren();
    var errors = 0;
    var warnings = 0;
    problems.forEach(function (problem) {
      if (problem.warning) { warnings += 1; } else { errors += 1; }
      var kind = problem.warning ? "warning" : "problem";
      var holder = holderOf(problem.path);
      var field = null;
      if (holder) {
        var item = document.createElement("li");
        item.className = kind;
        item.textContent = problem.message;
        holder.querySelector(":scope > .field-problems").appendChild(item);
        field = holder.querySelector("input:not([type=hidden]), textarea, select");
        if (field && !problem.warning) { field.setAttribute("aria-invalid", "true"); }
        for (var d = holder.closest("details"); d; d = d.parentElement.closest("details")) { d.open = true; }
      }
      var entry = document.createElement("li");
      entry.className = kind;
      if (field && field.id) {
        var link = document.createElement("a");
        link.href = "#" + field.id;
        link.textContent = problem.message;
        entry.appendChild(link);
      } else {
        entry.textContent = problem.message;
      }
      summary.appendChild(entry);
    });
    var count = document.getElementById("summary-count");
    var line = errors ? format(count.dataset.count, { count: errors }) : count.dataset.ok;
    if (warnings) { line += " · " + format(count.dataset.warnings, { count: warnings }); }
    count.textContent = line;
  }

  function costLine(cost) {
    var item = document.createElement("li");
    item.className = "cost" + (cost.over_budget ? " over" : "");
    item.dataset.lang = cost.language;
    var lang = document.createElement("span");
    lang.className = "lang";
    lang.textContent = cost.language;
    item.appendChild(lang);
    var unit = cost.segments === 1 ? texts.tSegment : texts.tSegments;
    item.appendChild(document.createTextNode(" " + cost.segments + " " + unit + " · " + cost.encoding + " "));
    var add = function (className, text) {
      var span = document.createElement("span");
      span.className = className;
      span.textContent = text;
      item.appendChild(span);
      item.appendChild(document.createTextNode(" "));
    };
    if (cost.ucs2_characters) {
      add("ucs2", format(texts.tUcs2, { chars: Array.from(cost.ucs2_characters).join(" ") }));
    }
    if (cost.other_spelling === "plain" && cost.other_segments !== null && cost.other_segments < cost.segments) {
      add("hint", format(texts.tPlain, { segments: cost.other_segments }));
    }
    if (cost.over_budget) {
      add("over-note", format(texts.tOver, { budget: cost.budget }));
    }
    return item;
  }

  function showCosts(costs) {
    form.querySelectorAll("ul.costs").forEach(function (list) { list.replaceChildren(); });
    var byQuestion = new Map();
    questions().forEach(function (fieldset) {
      var id = fieldset.querySelector(".question-id").value.trim();
      if (id && !byQuestion.has(id)) { byQuestion.set(id, fieldset.querySelector(":scope > ul.costs")); }
    });
    costs.forEach(function (cost) {
      var list = byQuestion.get(cost.message);
      if (!list && ["consent", "intro", "closing"].indexOf(cost.message) >= 0) {
        list = form.querySelector('ul.costs[data-costs-for="' + cost.message + '"]');
      }
      if (list) { list.appendChild(costLine(cost)); }
    });
  }

  var checkTimer = null;
  var checkNumber = 0;

  function runCheck() {
    var number = ++checkNumber;
    fetch(form.dataset.checkUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "text/yaml; charset=utf-8", "X-CSRFToken": csrf, Accept: "application/json" },
      // JSON is YAML; one field a line, so each problem's line names its field.
      body: JSON.stringify(documentFromForm(), null, 1),
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (data) {
      if (data && number === checkNumber) {
        showProblems(data.problems);
        showCosts(data.segments);
        form.dataset.checked = String(number);
      }
    }).catch(function () { /* the next keystroke checks again */ });
  }

  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(runCheck, CHECK_DELAY);
  }

  // --- saving --------------------------------------------------------------------------------------

  var saveTimer = null;
  var saving = null;
  var isDirty = false;
  var isStale = false;

  function setStatus(text) {
    statusLine.textContent = text;
  }

  function save() {
    clearTimeout(saveTimer);
    if (isStale) { return Promise.resolve(); }
    if (saving) {
      return saving.then(save);
    }
    if (!isDirty) { return Promise.resolve(); }
    isDirty = false;
    setStatus(texts.tSaving);
    saving = fetch(form.dataset.saveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify({ document: documentFromForm(), revision: parseInt(revisionInput.value, 10) }),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) {
          revisionInput.value = String(data.revision);
          var now = new Date();
          setStatus(texts.tSaved + " " + now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
          form.dataset.saved = String(data.revision);
        } else if (response.status === 409) {
          isStale = true;
          document.getElementById("stale").hidden = false;
          setStatus(data.message || "");
        } else {
          isDirty = true;
          setStatus(texts.tNotSaved + " " + (data.message || response.status));
        }
      });
    }).catch(function () {
      isDirty = true;
      setStatus(texts.tOffline);
    }).then(function () {
      saving = null;
    });
    return saving;
  }

  function scheduleSave() {
    isDirty = true;
    setStatus(texts.tUnsaved);
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, SAVE_DELAY);
  }

  function changed() {
    refreshWhenNames();
    scheduleCheck();
    scheduleSave();
  }

  // --- events ------------------------------------------------------------------------------------

  form.addEventListener("input", function (event) {
    if (event.target.name === "languages") { return; }
    changed();
  });

  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name === "languages") {
      changed();
      var chosen = splitLanguages(target.value);
      var isValid = chosen.length > 0 && chosen.every(function (code) { return /^[a-z]{2,3}$/.test(code); });
      if (!isValid) { return; }  // the check says what is wrong; nothing is redrawn
      var dropped = titleLanguages(formValues()).filter(function (code) { return chosen.indexOf(code) < 0; });
      if (dropped.length && !window.confirm(format(texts.tDropLanguages, { languages: dropped.join(", ") }))) {
        target.value = target.defaultValue;
        changed();
        return;
      }
      // New languages need their own fields: save, then let the server draw the page again.
      save().then(function () {
        if (!isDirty && !isStale) { window.location.reload(); }
      });
      return;
    }
    if (target.classList.contains("question-type")) {
      setType(questionOf(target), target.value);
    }
    if (target.type === "checkbox" || target.type === "radio" || target.tagName === "SELECT") {
      changed();
    }
  });

  var isSubmitting = false;

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button[name=action]");
    if (!button || ["save", "publish"].indexOf(button.value) >= 0) { return; }
    event.preventDefault();
    onAction(button);
  });

  // Save and Publish post the form as without this script, once an autosave under way is done
  // (the form then carries the revision it saved).
  form.addEventListener("submit", function (event) {
    clearTimeout(saveTimer);
    if (isSubmitting || !saving) {
      isSubmitting = true;
      return;
    }
    event.preventDefault();
    var submitter = event.submitter;
    saving.then(function () {
      // Not from this event's own dispatch: a form ignores a submit asked during it.
      setTimeout(function () {
        isSubmitting = true;
        form.requestSubmit(submitter);
      }, 0);
    });
  });

  document.getElementById("summary-list").addEventListener("click", function (event) {
    var link = event.target.closest("a[href^='#']");
    if (!link) { return; }
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (field) {
      event.preventDefault();
      for (var d = field.closest("details"); d; d = d.parentElement.closest("details")) { d.open = true; }
      field.focus();
      field.scrollIntoView({ block: "center" });
    }
  });

  // Leaving with changes not saved yet: send them on the way out.
  window.addEventListener("pagehide", function () {
    if (!isDirty || isStale || isSubmitting) { return; }
    fetch(form.dataset.saveUrl, {
      method: "POST",
      credentials: "same-origin",
      keepalive: true,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ document: documentFromForm(), revision: parseInt(revisionInput.value, 10) }),
    });
  });

  // Back to this page from the browser's history: it may be submitted again.
  window.addEventListener("pageshow", function () {
    isSubmitting = false;
  });

  // For tests and the curious: the document this page would save.
  window.engageEditor = { documentFromForm: documentFromForm, save: save };
  form.dataset.ready = "true";
})();
