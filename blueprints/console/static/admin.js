// Admin pages: the password-reset form posts to the account chosen in its list.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-reset-form]");
    if (!form) { return; }
    var target = form.querySelector("[data-reset-target]");
    function aim() { form.action = target.value; }
    target.addEventListener("change", aim);
    aim();
  });
})();
