// Progressive enhancement for the gift's look and delivery at checkout: the radios work without it.
// - "Send it to me to give in person" hides what only an emailed gift needs (address, delivery time).
// - The chosen design is shown in a preview card, in its colours and with its artwork.
(function () {
  "use strict";
  var form = document.querySelector("form.checkout");
  if (!form) return;

  var EMAIL_ONLY = ["recipient_email", "recipient_email_again", "confirm_own_address", "send_now",
    "delivery_date", "delivery_time", "time_zone"];
  function fieldOf(name) {
    var input = form.querySelector("[name=" + name + "]");
    return input && input.closest(".field");
  }
  function toggleDelivery() {
    var chosen = form.querySelector("input[name=delivery_method]:checked");
    var handover = chosen && chosen.value === "handover";
    EMAIL_ONLY.forEach(function (name) {
      var field = fieldOf(name);
      if (!field) return;
      if (handover) { field.dataset.handoverHidden = "1"; field.hidden = true; }
      else if (field.dataset.handoverHidden) { delete field.dataset.handoverHidden; field.hidden = false; }
    });
    var zoneHelp = document.getElementById("time-zone-help");
    if (zoneHelp) zoneHelp.hidden = handover;
    if (!handover) {
      // gift-details.js hides the date and time under "Send it now": keep its say once they come back.
      var sendNow = form.querySelector("input[name=send_now]");
      if (sendNow) sendNow.dispatchEvent(new Event("change"));
    }
  }
  Array.prototype.forEach.call(form.querySelectorAll("input[name=delivery_method]"), function (radio) {
    radio.addEventListener("change", toggleDelivery);
  });
  toggleDelivery();

  var preview = document.getElementById("design-preview");
  if (!preview) return;
  var card = preview.querySelector("[data-preview=card]");
  var art = preview.querySelector("[data-preview=art]");
  var name = preview.querySelector("[data-preview=name]");
  var title = preview.querySelector("[data-preview=title]");
  function show() {
    var radio = form.querySelector("input[name=design]:checked");
    if (!radio) { preview.hidden = true; return; }
    var choice = radio.closest(".design-choice");
    card.style.backgroundColor = choice.dataset.background;
    card.style.color = choice.dataset.text;
    card.style.borderColor = choice.dataset.accent;
    title.style.color = choice.dataset.accent;
    card.dataset.design = radio.value;
    name.textContent = choice.dataset.name;
    var source = choice.querySelector(".design-art");
    art.replaceChildren();
    if (source) {
      Array.prototype.forEach.call(source.childNodes, function (node) { art.appendChild(node.cloneNode(true)); });
    }
    preview.hidden = false;
  }
  Array.prototype.forEach.call(form.querySelectorAll("input[name=design]"), function (radio) {
    radio.addEventListener("change", show);
  });
  show();
})();
