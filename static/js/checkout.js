// Progressive enhancement for the checkout form: the page works without any of this.
(function () {
  "use strict";
  var form = document.querySelector("form.checkout");
  if (!form) return;

  // Default the time zone to the browser's when the page did not choose one.
  var zone = form.querySelector("select[name=time_zone]");
  try {
    var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && zone.dataset.guess && !form.querySelector(".has-error") && browserZone) {
      for (var i = 0; i < zone.options.length; i++) {
        if (zone.options[i].value === browserZone) { zone.value = browserZone; break; }
      }
    }
  } catch (e) { /* old browser: keep the server's default */ }

  // Re-price when the coupon changes.
  var coupon = form.querySelector("input[name=coupon]");
  var timer;
  function reprice() {
    fetch(form.dataset.priceUrl + "?coupon=" + encodeURIComponent(coupon.value), {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        form.querySelector("[data-price=offer]").textContent = p.shown.offerPrice;
        var discount = form.querySelector("[data-price=discount]");
        discount.textContent = "−" + p.shown.discount;
        var none = Number(p.discount) === 0;  // no "Discount −0.00" without a coupon
        discount.hidden = none;
        form.querySelector("[data-price=discount-label]").hidden = none;
        form.querySelector("[data-price=total]").innerHTML = "<strong></strong>";
        form.querySelector("[data-price=total] strong").textContent = p.shown.total;
        var pay = form.querySelector("button[value=pay]");
        if (pay) pay.textContent = p.shown.pay || "Pay " + p.shown.total;  // the button's words, in the page's language
        var shown = form.querySelector("[data-price=shown]");
        if (shown) shown.value = p.total;
      })
      .catch(function () { /* the Apply button still works */ });
  }
  if (coupon) coupon.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(reprice, 300); });

  // One click pays once (the server also refuses a second order for this form).
  form.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if (submitter && submitter.value === "pay") {
      if (form.dataset.submitted) { event.preventDefault(); return; }
      form.dataset.submitted = "1";
    }
  });
})();
