// The accounts page: a button that copies the set-password link (shown only where the
// browser lets a page write to the clipboard; the link can always be selected by hand).
"use strict";
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var field = document.getElementById(button.dataset.copy);
  if (!field || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = button.dataset.copied || button.textContent;
    });
  });
});
