// The payment step with Stripe.js (loaded from Stripe by the page): the Payment Element for a new card or a wallet,
// or the card on file; Stripe.js runs 3-D Secure when the bank asks for it, then sends the browser to the return
// address, where the server checks the payment with Stripe.
(function () {
  "use strict";
  var form = document.getElementById("payment-form");
  if (!form || typeof Stripe === "undefined") return;
  // Stripe.js writes its own messages (card errors, the Payment Element's labels) in the page's language.
  var stripe = Stripe(form.dataset.publishableKey, {locale: document.documentElement.lang || "auto"});
  var clientSecret = form.dataset.clientSecret;
  var savedCard = form.dataset.paymentMethod;
  var error = document.getElementById("payment-error");
  var button = document.getElementById("pay-button");
  var elements = null;
  if (!savedCard) {
    elements = stripe.elements({clientSecret: clientSecret});
    var container = document.getElementById("payment-element");
    container.textContent = "";
    elements.create("payment", {layout: "tabs"}).mount("#payment-element");
  }
  function show(message) {
    error.textContent = message;
    error.hidden = false;
    button.disabled = false;
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    error.hidden = true;
    var options = {confirmParams: {return_url: form.dataset.returnUrl}};
    if (savedCard) {
      options.clientSecret = clientSecret;
      options.confirmParams.payment_method = savedCard;
    } else {
      options.elements = elements;
    }
    stripe.confirmPayment(options).then(function (result) {
      // Only an immediate error comes back here; otherwise Stripe.js has sent the browser to the return address.
      if (result && result.error) show(result.error.message);
    });
  });
})();
