// The policy desk: publishing and withdrawing ask for a confirmation first.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.dataset ? form.dataset.confirm : "";
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();
