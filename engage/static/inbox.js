// The inbox's reply box: a chosen canned reply is copied into the box to be edited, and the
// characters left are counted. Without JavaScript the form still works: a canned reply chosen
// with the box empty is sent as it is.
(function () {
  "use strict";
  var canned = document.getElementById("canned");
  var body = document.getElementById("body");
  var count = document.getElementById("body-count");
  if (!body) {
    return;
  }
  var max = parseInt(body.getAttribute("data-max"), 10) || 1600;

  function showCount() {
    if (count) {
      count.textContent = String(max - body.value.length) + " / " + String(max);
    }
  }

  if (canned) {
    canned.addEventListener("change", function () {
      var option = canned.options[canned.selectedIndex];
      var text = option ? option.getAttribute("data-text") : null;
      if (text !== null) {
        body.value = text;
        showCount();
        body.focus();
      }
    });
  }
  body.addEventListener("input", showCount);
  showCount();
})();
