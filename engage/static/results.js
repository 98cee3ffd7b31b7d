// The results page: choosing a breakdown shows it at once (the form's button is for no-script).
"use strict";
document.querySelectorAll("form.breakdown select").forEach(function (select) {
  select.addEventListener("change", function () {
    select.form.submit();
  });
});
