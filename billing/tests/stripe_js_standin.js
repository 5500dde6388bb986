// A stand-in for Stripe.js v3 in the browser tests, served by the fake Stripe API (billing/tests/fake_stripe.py) at
// /v3/ when a test points STRIPE_JS_URL there; production loads https://js.stripe.com/v3/. It implements the part
// of Stripe.js the shop uses: Stripe(key), stripe.elements({clientSecret}), elements.create("payment").mount(…),
// stripe.confirmPayment({elements | clientSecret, confirmParams: {return_url, payment_method}}). Its Payment
// Element offers Stripe's test cards (no card number is typed, as none reaches the shop with the real one either);
// confirming calls the fake's /v1/payment_intents/:id/confirm with the publishable key and client secret as
// Stripe.js does, and a card that needs 3-D Secure opens a challenge (Stripe's test page: Complete / Fail).
(function () {
  "use strict";
  var base = new URL(document.currentScript.src).origin;
  var CARDS = [
    ["pm_card_visa", "Visa •••• 4242 — succeeds"],
    ["pm_card_threeDSecure2Required", "Visa •••• 3220 — 3-D Secure required"],
    ["pm_card_authenticationRequired", "Visa •••• 3184 — always authenticates"],
    ["pm_card_chargeDeclined", "Visa •••• 0002 — declined"],
    ["pm_card_chargeDeclinedInsufficientFunds", "Visa •••• 9995 — insufficient funds"],
  ];

  function post(path, params) {
    var body = new URLSearchParams(params).toString();
    return fetch(base + path, {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: body,
    }).then(function (r) { return r.json(); });
  }

  function intentId(clientSecret) { return clientSecret.split("_secret_")[0]; }

  function challenge() {
    // Stripe's 3-D Secure test page, in a modal as the real one is in an iframe.
    return new Promise(function (resolve) {
      var dialog = document.createElement("div");
      dialog.setAttribute("role", "dialog");
      dialog.setAttribute("aria-label", "3D Secure 2 Test Page");
      dialog.style.cssText = "position:fixed;inset:0;background:rgba(0,0,0,.5);display:flex;align-items:center;justify-content:center;z-index:1000";
      var box = document.createElement("div");
      box.style.cssText = "background:#fff;padding:24px;border-radius:8px;max-width:320px";
      var heading = document.createElement("h2");
      heading.textContent = "3D Secure 2 Test Page";
      box.appendChild(heading);
      var text = document.createElement("p");
      text.textContent = "Your bank asks you to confirm this payment.";
      box.appendChild(text);
      [["Complete", "complete"], ["Fail", "fail"]].forEach(function (choice) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = choice[0];
        button.addEventListener("click", function () { dialog.remove(); resolve(choice[1]); });
        box.appendChild(button);
      });
      dialog.appendChild(box);
      document.body.appendChild(dialog);
    });
  }

  function goTo(returnUrl, intent, status) {
    var url = new URL(returnUrl);
    url.searchParams.set("payment_intent", intent.id);
    url.searchParams.set("payment_intent_client_secret", intent.client_secret);
    url.searchParams.set("redirect_status", status);
    window.location.assign(url.toString());
    return new Promise(function () {});  // the page goes away
  }

  function Elements(stripe, options) {
    this.clientSecret = options.clientSecret;
    this.select = null;
  }
  Elements.prototype.create = function (type) {
    var elements = this;
    return {
      mount: function (selector) {
        var container = document.querySelector(selector);
        var label = document.createElement("label");
        label.textContent = "Card";
        label.setAttribute("for", "standin-card");
        var select = document.createElement("select");
        select.id = "standin-card";
        CARDS.forEach(function (card) {
          var option = document.createElement("option");
          option.value = card[0];
          option.textContent = card[1];
          select.appendChild(option);
        });
        container.appendChild(label);
        container.appendChild(select);
        elements.select = select;
      },
    };
  };
  Elements.prototype.submit = function () { return Promise.resolve({}); };

  function StripeStandIn(key) {
    if (!(this instanceof StripeStandIn)) return new StripeStandIn(key);
    this.key = key;
  }
  StripeStandIn.prototype.elements = function (options) { return new Elements(this, options || {}); };
  StripeStandIn.prototype.confirmPayment = function (options) {
    var key = this.key;
    var clientSecret = options.clientSecret || options.elements.clientSecret;
    var params = options.confirmParams || {};
    var method = params.payment_method || (options.elements && options.elements.select.value);
    var id = intentId(clientSecret);
    return post("/v1/payment_intents/" + id + "/confirm", {
      key: key, client_secret: clientSecret, payment_method: method, return_url: params.return_url,
    }).then(function (answer) {
      if (answer.error) return {error: answer.error};
      if (answer.status === "succeeded") return goTo(params.return_url, answer, "succeeded");
      if (answer.status !== "requires_action") return {error: {message: "Unexpected status " + answer.status}};
      return challenge().then(function (outcome) {
        return post("/_test/3ds/" + id, {key: key, client_secret: clientSecret, outcome: outcome});
      }).then(function (after) {
        if (after.status === "succeeded") return goTo(params.return_url, after, "succeeded");
        return {error: after.last_payment_error || {message: "The payment was not authenticated."}};
      });
    });
  };
  window.Stripe = StripeStandIn;
})();
