/* genai-desk pages: copy buttons, rating toggles and the reviewer's keyboard shortcuts. */
(function () {
  "use strict";

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { source.select(); document.execCommand("copy"); done(); });
    } else {
      source.select && source.select();
      document.execCommand("copy");
      done();
    }
  });

  // Reviewer shortcuts on a review item: a approve, r reject, c request changes, n/j next, p/k previous.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var page = document.querySelector("[data-shortcuts]");
    if (!page) return;
    var key = event.key.toLowerCase();
    var go = function (selector) {
      var el = page.querySelector(selector);
      if (!el) return false;
      event.preventDefault();
      if (el.tagName === "A") { window.location = el.href; }
      else if (el.tagName === "TEXTAREA" || el.tagName === "INPUT") { el.focus(); }
      else { el.click(); }
      return true;
    };
    if (key === "a") go("[data-key=approve]");
    else if (key === "r") go("[data-key=reject-reason]");
    else if (key === "c") go("[data-key=changes-reason]");
    else if (key === "n" || key === "j") go("[data-key=next]");
    else if (key === "p" || key === "k") go("[data-key=prev]");
    else if (key === "?") go("[data-key=help]");
  });
})();
