"use strict";
// The admin's periodic task form: say in words what the chosen crontab means
// (django-celery-beat does this in an inline script, which our CSP refuses).
(function () {
  const script = document.currentScript;
  const readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
  const select = document.getElementById("id_crontab");
  const help = document.querySelector(".field-crontab .help");
  const translation = document.querySelector(".field-crontab_translation");
  if (translation) {
    translation.hidden = true;
  }
  if (!select || !help) {
    return;
  }
  select.addEventListener("change", function () {
    help.replaceChildren(
      document.createTextNode(script.dataset.crontabHelp),
      document.createElement("br"),
      document.createTextNode("Translation: " + (readable[select.value] || ""))
    );
  });
})();
