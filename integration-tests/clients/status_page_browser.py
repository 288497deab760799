"""Drives Weft's status page in headless Chromium (Debian's chromium + chromium-driver, through
selenium) as a user would, checks what it shows, and saves a screenshot of each view.

Checks, in order (the first that fails ends the run with exit status 1 and says what it saw):
  1. the pipelines view shows non-zero counts (the traces pipeline's receiver and tail_sampling);
  2. the window view shows the window;
  3. the decisions view, searched by the kept trace's id, lists it as KEPT;
  4. the header's search opens the kept trace: KEPT, the policy that kept it and its reason,
     its spans, and its ERROR log inline on the span that wrote it;
  5. the dropped trace says it was dropped and why each policy did not keep it;
  6. the trace whose span is named <img src=x onerror=alert(1)> shows that name as text:
     no image element, no alert;
  7. an unknown trace id gets a clear "not in the last N decisions" page;
  8. the browser logged no error (a Content-Security-Policy violation would be one).

Prints a JSON summary on success.

Usage: status_page_browser.py --base URL --chromium PATH --driver PATH --kept ID --dropped ID
                              --xss ID --xss-name NAME --unknown ID --out DIR
"""

import argparse
import json
import os
import sys
import tempfile

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

# The flags that work here: headless, no sandbox (root in a container), nothing that phones
# home, a fresh profile.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]


class Failed(Exception):
    pass


def main():
    p = argparse.ArgumentParser()
    for name in ["base", "chromium", "driver", "kept", "dropped", "xss", "xss-name", "unknown", "out"]:
        p.add_argument("--" + name, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="weft-chromium-")
    options.add_argument("--user-data-dir=" + profile)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver binary is given: selenium never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(executable_path=args.driver), options=options)
    shots = []
    try:
        wait = WebDriverWait(driver, args.timeout)

        def until(what, condition):
            try:
                return wait.until(lambda d: condition(d))
            except TimeoutException:
                raise Failed("%s (page text: %r)" % (what, driver.find_element(By.ID, "view").text[:2000]))

        def shot(name):
            path = os.path.join(args.out, name + ".png")
            driver.save_screenshot(path)
            shots.append(path)

        def no_alert(where):
            try:
                text = driver.switch_to.alert.text
            except NoAlertPresentException:
                return
            raise Failed("an alert opened on %s: %r" % (where, text))

        # 1. Pipelines: the counts are not zero.
        driver.get(args.base + "/#/pipelines")

        def counted(d):
            receivers = d.find_elements(By.CSS_SELECTOR, '.pipeline[data-id="traces"] .component[data-kind="receiver"]')
            window = d.find_elements(By.CSS_SELECTOR, '.pipeline[data-id="traces"] .component[data-id="tail_sampling"]')
            return (receivers and window and float(receivers[0].get_attribute("data-in") or 0) > 0
                    and float(window[0].get_attribute("data-out") or 0) > 0)

        until("the pipelines view shows spans received and kept", counted)
        receiver = driver.find_element(By.CSS_SELECTOR, '.pipeline[data-id="traces"] .component[data-kind="receiver"]')
        spans_in = float(receiver.get_attribute("data-in"))
        shot("pipelines")

        # 2. The window.
        driver.get(args.base + "/#/window")
        until("the window view shows tail_sampling", lambda d: d.find_elements(By.CSS_SELECTOR, '.window[data-id="tail_sampling"] .stat'))
        shot("window")

        # 3. Decisions, searched by id.
        driver.get(args.base + "/#/decisions")
        query = until("the decisions view has its search box", lambda d: d.find_element(By.ID, "filter-q"))
        query.send_keys(args.kept)
        row = until("the kept trace is listed when searched",
                    lambda d: d.find_elements(By.CSS_SELECTOR, 'tr.decision[data-trace-id="%s"]' % args.kept)
                    and len(d.find_elements(By.CSS_SELECTOR, "tr.decision")) == 1)
        row = driver.find_element(By.CSS_SELECTOR, 'tr.decision[data-trace-id="%s"]' % args.kept)
        if "KEPT" not in row.text:
            raise Failed("the kept trace's row says %r" % row.text)
        shot("decisions")

        # 4. The kept trace, opened from the header's search.
        search = driver.find_element(By.ID, "search-trace")
        search.clear()
        search.send_keys(args.kept + Keys.ENTER)
        until("the kept trace opens", lambda d: d.find_elements(By.ID, "trace-verdict")
              and d.find_element(By.ID, "trace-id").text == args.kept)
        verdict = driver.find_element(By.ID, "trace-verdict").text
        decided_by = driver.find_element(By.ID, "decided-by")
        if verdict != "KEPT" or decided_by.get_attribute("data-policy") != "errors":
            raise Failed("kept trace: verdict %r, decided by %r" % (verdict, decided_by.text))
        keeper = driver.find_element(By.CSS_SELECTOR, 'tr.policy-row.decider[data-name="errors"]')
        if "has status ERROR" not in keeper.text:
            raise Failed("the keeping policy's reason: %r" % keeper.text)
        charge = [r for r in driver.find_elements(By.CSS_SELECTOR, ".span-row")
                  if r.find_element(By.CSS_SELECTOR, ".span-name").text == "Charge"]
        if not charge:
            raise Failed("no Charge span in the waterfall: %r" % driver.find_element(By.ID, "waterfall").text)
        errors = charge[0].find_elements(By.CSS_SELECTOR, ".log.sev-error")
        if not any("payment failed: card declined" in e.text for e in errors):
            raise Failed("the ERROR log is not inline on its span: %r" % charge[0].text)
        span_names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".span-name")]
        shot("trace-kept")

        # 5. A dropped trace, and why.
        driver.get(args.base + "/#/trace/" + args.dropped)
        until("the dropped trace opens", lambda d: d.find_elements(By.ID, "trace-verdict")
              and d.find_element(By.ID, "trace-id").text == args.dropped)
        verdict = driver.find_element(By.ID, "trace-verdict").text
        why = driver.find_element(By.ID, "decided-by").text
        reasons = {r.get_attribute("data-name"): r.find_element(By.CSS_SELECTOR, ".reason").text
                   for r in driver.find_elements(By.CSS_SELECTOR, "tr.policy-row")}
        if verdict != "DROPPED" or "no policy asked to keep it" not in why:
            raise Failed("dropped trace: verdict %r, %r" % (verdict, why))
        if not reasons.get("errors", "").startswith("none of") or "< 1 s" not in reasons.get("slow", "") \
                or not reasons.get("error-logs", "").startswith("no log at or above ERROR"):
            raise Failed("the dropped trace's reasons: %r" % reasons)
        shot("trace-dropped")

        # 6. Markup in the data is text.
        driver.get(args.base + "/#/trace/" + args.xss)
        until("the trace with markup in its span name opens", lambda d: d.find_elements(By.CSS_SELECTOR, ".span-name"))
        names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".span-name")]
        if args.xss_name not in names:
            raise Failed("the span name does not show as text: %r" % names)
        if driver.find_elements(By.CSS_SELECTOR, "#view img"):
            raise Failed("an image element was made from the data")
        bodies = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".log-body")]
        if not any("<script>" in b for b in bodies):
            raise Failed("the log body with markup does not show as text: %r" % bodies)
        no_alert("the trace with markup")
        shot("trace-markup")

        # 7. An unknown id.
        driver.get(args.base + "/#/trace/" + args.unknown)
        message = until("an unknown trace gets a page saying so",
                        lambda d: d.find_elements(By.ID, "trace-error") and d.find_element(By.ID, "trace-error").text)
        if "is not in the last" not in message or "decisions" not in message:
            raise Failed("the unknown trace's page says %r" % message)
        shot("trace-unknown")
        no_alert("the whole run")

        # 8. The browser's own errors.
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
                  and "/api/traces/" + args.unknown not in e.get("message", "")]
        if severe:
            raise Failed("the browser logged errors: %r" % severe)
        print(json.dumps({"spans_in": spans_in, "kept_span_names": span_names, "dropped_reasons": reasons,
                          "unknown": message, "screenshots": shots}))
        return 0
    except Failed as e:
        try:
            shot("failure")
        except Exception:
            pass
        print("status page check failed: %s (screenshots: %s)" % (e, shots), file=sys.stderr)
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
