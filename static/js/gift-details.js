// Progressive enhancement for the gift details (checkout and gift edit forms): the pages work without it.
(function () {
  "use strict";
  var form = document.querySelector("form.checkout, form.gift-edit");
  if (!form) return;

  // A live counter for the personal note.
  var note = form.querySelector("textarea[data-counter]");
  var counter = note && document.getElementById(note.dataset.counter);
  function count() {
    var limit = parseInt(counter.dataset.limit, 10);
    // The words come translated from the page (data-format), with the numbers left to fill in.
    var format = counter.dataset.format || "%(left)s of %(limit)s characters left";
    counter.textContent = format.replace("%(left)s", limit - note.value.length).replace("%(limit)s", limit);
  }
  if (note && counter) { note.addEventListener("input", count); count(); }

  // "Send it now" hides the date and time.
  var sendNow = form.querySelector("input[name=send_now]");
  function toggleWhen() {
    ["delivery_date", "delivery_time"].forEach(function (name) {
      var input = form.querySelector("[name=" + name + "]");
      if (input) input.closest(".field").hidden = sendNow.checked;
    });
  }
  if (sendNow) { sendNow.addEventListener("change", toggleWhen); toggleWhen(); }

  // The browser's time zone, first in the "Common" group, and chosen when the person has not chosen one yet.
  var zone = form.querySelector("select[name=time_zone]");
  var guess;
  try { guess = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { guess = null; }
  var option = zone && guess && Array.prototype.find.call(zone.options, function (o) { return o.value === guess; });
  if (option) {
    var common = zone.querySelector("optgroup");
    if (common && option.parentNode !== common) {
      var copy = option.cloneNode(true);
      option.parentNode.removeChild(option);
      option = copy;
    }
    if (common) common.insertBefore(option, common.firstChild);
    if (zone.dataset.guess) option.selected = true;
  }
})();
