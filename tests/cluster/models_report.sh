#!/usr/bin/env bash
# The report page: jdsh.report writes one self-contained HTML page of what two models find (emoji
# pictures by text, texts by picture, MAP and precision-recall curves); a real browser (headless
# Chromium from Debian's packages, installed here when missing, skipped visibly where it cannot
# be) decodes every picture and finds every section; the pictures ranked in memory are at the
# same Hamming distances as the ones the stored code columns' mih indexes return; the page's MAP
# is jdsh.evaluate's; bad arguments are clear errors.
#
#   tests/cluster/models_report.sh   # JDSH_MODELS_PORT (54361); needs the emoji packages
#                                    # (.cache/emoji, scripts/fetch-emoji.sh)
TEST_NAME=models_report
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
models_fixture

load_emoji er er_texts
# Two small models from the hand-crafted image features (fast; the page does not care how good
# they are): trained on the google images of the training emoji, shown on facebook's images.
q -c "CREATE TABLE er AS SELECT id, vendor, split, name, subcategory_id, keywords, png,
                                jdsh.image_features(png, 'handcrafted') AS h
        FROM emoji_all WHERE (vendor = 'google' AND split = 'train') OR vendor = 'facebook'" \
  -c "CREATE TABLE er_texts AS SELECT DISTINCT ON (id) id, keywords, subcategory_id FROM emoji_all ORDER BY id" >/dev/null ||
  fail "cannot build the report's tables"
for m in "rep_a 64" "rep_b 32"; do
  set -- $m
  q -c "SELECT jdsh.drop_model('$1') FROM jdsh.models WHERE name = '$1' LIMIT 1" >/dev/null
  q -c "SELECT version FROM jdsh.train('$1', 'SELECT h, keywords, subcategory_id FROM er WHERE vendor = ''google''',
                                       image => 'h', text => 'keywords', labels => 'subcategory_id',
                                       method => 'cca-itq', bits => $2, options => '{\"holdout\": 0}')" >/dev/null ||
    fail "jdsh.train ($1) failed"
done
q -c "DELETE FROM er WHERE vendor <> 'facebook'" \
  -c "ALTER TABLE er ADD COLUMN ca bitcode(64), ADD COLUMN cb bitcode(32)" \
  -c "UPDATE er SET ca = jdsh.encode_image('rep_a', h), cb = jdsh.encode_image('rep_b', h)" \
  -c "CREATE INDEX ON er USING mih (ca)" -c "CREATE INDEX ON er USING mih (cb)" -c "VACUUM ANALYZE er" >/dev/null ||
  fail "cannot encode and index the facebook images"

K=6
QUERIES="{red fruit,cat,rocket,\"flag of japan\"}"
PICS="{RED APPLE,CAT FACE}"
# jdsh.evaluate's arguments as JSON, inside a SQL literal (hence the doubled quotes).
PROTOCOL=$(cat <<'JSON'
[{"direction": "text->image", "queries": "SELECT keywords, subcategory_id FROM er WHERE split = ''test''",
  "query_column": "keywords", "retrieval": "SELECT h, subcategory_id FROM er WHERE split = ''train''",
  "retrieval_column": "h", "labels": "subcategory_id"},
 {"direction": "image->text", "queries": "SELECT h, subcategory_id FROM er WHERE split = ''test''",
  "query_column": "h", "retrieval": "SELECT keywords, subcategory_id FROM er_texts WHERE id IN (SELECT id FROM er WHERE split = ''train'')",
  "retrieval_column": "keywords", "labels": "subcategory_id"}]
JSON
)
report() {  # report FILE [more named arguments]: writes the page of both models into FILE
  local out=$1; shift
  q -o "$out" -c "SELECT jdsh.report('{rep_a,rep_b}', 'er', 'png', 'name', '$QUERIES', k => $K, encode => 'h',
                                     texts => 'er_texts', text_column => 'keywords', image_queries => '$PICS',
                                     evaluation => '$PROTOCOL', title => 'emoji <test> & co' $*)"
}
say "jdsh.report: in memory, and by the stored code columns (mih index scans)"
report "$FILES/page.html" || fail "jdsh.report failed"
report "$FILES/page_codes.html" ", codes => '{ca,cb}'" || fail "jdsh.report with codes failed"

# What the pages say, read back with Python's HTML parser: per section, per query, per model, the
# (caption, distance) pairs in page order; the MAP table; the charts.
cat >"$FILES/read_page.py" <<'PY'
import html.parser, json, re, sys
class P(html.parser.HTMLParser):
    def __init__(s):
        super().__init__(); s.section = None; s.query = -1; s.model = -1; s.out = {"sections": [], "hits": {}, "maps": [], "svgs": 0, "polylines": 0, "imgs": 0, "scripts": 0, "title": ""}
        s.stack = []; s.text = ""; s.in_td = False; s.in_title = False
    def handle_starttag(s, tag, a):
        a = dict(a); cls = a.get("class", "")
        if tag == "section": s.section = a.get("id"); s.out["sections"].append(s.section); s.query = -1
        if cls in ("text-query", "image-query"): s.query += 1; s.model = -1
        if cls == "model": s.model += 1
        if tag in ("li",): s.text = ""
        if tag == "img": s.out["imgs"] += 1
        if tag == "svg": s.out["svgs"] += 1
        if tag == "polyline": s.out["polylines"] += 1
        if tag == "script": s.out["scripts"] += 1
        if tag == "td" and cls == "num" and s.section == "evaluation": s.in_td = True; s.text = ""
        if tag == "title": s.in_title = True
    def handle_endtag(s, tag):
        if tag == "li" and s.section in ("image-search", "text-search"):
            m = re.search(r"^(.*?)\s*distance (\d+)$", s.text.strip(), re.S)
            s.out["hits"].setdefault(s.section, {}).setdefault(str(s.query), {}).setdefault(str(s.model), []).append([m.group(1), int(m.group(2))])
        if tag == "td" and s.in_td: s.out["maps"].append(float(s.text)); s.in_td = False
        if tag == "title": s.in_title = False
    def handle_data(s, d):
        s.text += d
        if s.in_title: s.out["title"] += d
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read()); print(json.dumps(p.out))
PY
read_page() { python3 "$FILES/read_page.py" "$1"; }
read_page "$FILES/page.html" >"$FILES/page.json" || fail "the page does not parse as HTML"
read_page "$FILES/page_codes.html" >"$FILES/page_codes.json" || fail "the page with codes does not parse as HTML"
check=$(python3 - "$FILES/page.json" "$FILES/page_codes.json" "$K" <<'PY'
import json, sys
a, b, k = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
bad = []
if a["sections"] != ["models", "image-search", "text-search", "evaluation"]: bad.append(f"sections {a['sections']}")
img = a["hits"].get("image-search", {})
if len(img) != 4 or any(len(img[q]) != 2 or any(len(h) != k for h in img[q].values()) for q in img):
    bad.append(f"image search is not 4 queries x 2 models x {k} pictures: {[[len(h) for h in img[q].values()] for q in img]}")
txt = a["hits"].get("text-search", {})
if len(txt) != 2 or any(len(txt[q]) != 2 or any(len(h) != k for h in txt[q].values()) for q in txt):
    bad.append("text search is not 2 pictures x 2 models x k texts")
for q in img:
    for m in img[q]:
        d = [x[1] for x in img[q][m]]
        if d != sorted(d): bad.append(f"query {q} model {m}: distances not ascending {d}")
        e = [x[1] for x in b["hits"]["image-search"][q][m]]
        if d != e: bad.append(f"query {q} model {m}: in memory {d}, by the mih index {e}")
for q in txt:
    for m in txt[q]:
        d = [x[1] for x in txt[q][m]]
        if d != sorted(d): bad.append(f"picture {q} model {m}: text distances not ascending {d}")
if a["imgs"] != 4 * 2 * k + 2: bad.append(f"{a['imgs']} <img> on the page, expected {4 * 2 * k + 2}")
if (a["svgs"], a["polylines"]) != (2, 4): bad.append(f"{a['svgs']} charts with {a['polylines']} curves, expected 2 with 4")
if a["scripts"]: bad.append("the page has a script")
if a["title"] != "emoji <test> & co": bad.append(f"title {a['title']!r}")
print("; ".join(bad) or "ok", json.dumps(a["maps"]))
PY
) || fail "cannot compare the pages"
[ "${check%% *}" = ok ] || soft_fail "the page: ${check% \[*}"
maps=${check#ok }
say "page: $(stat -c %s "$FILES/page.html") bytes; in memory and by index agree; MAP on the page (rep_a t2i, i2t, rep_b t2i, i2t): $maps"

# The page's MAP@all is jdsh.evaluate's (3 decimals).
want=$(q -c "SELECT json_agg(round(e.value::numeric, 3) ORDER BY m.i, d.i)
               FROM (VALUES (1, 'rep_a'), (2, 'rep_b')) m(i, model),
                    LATERAL (SELECT ordinality AS i, value AS p FROM jsonb_array_elements('$PROTOCOL') WITH ORDINALITY) d,
                    LATERAL jdsh.evaluate(m.model, d.p->>'queries', d.p->>'query_column', d.p->>'retrieval',
                                          d.p->>'retrieval_column', d.p->>'labels', '{}', d.p->>'direction') e
              WHERE e.metric = 'map' AND e.k IS NULL")
python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); sys.exit(0 if len(a)==4 and all(abs(x-y)<1e-9 for x,y in zip(a,b)) else 1)" "$maps" "$want" ||
  soft_fail "MAP on the page $maps, jdsh.evaluate gives $want"

# A real browser: every picture decodes, every section and chart renders. The check runs in a
# copy of the page with a script added at its end (the page itself has none).
browser=$(command -v chromium || true)
if [ -z "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing Debian's chromium for the browser check (apt-get, about half a minute)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    >"$FILES/apt-chromium.log" 2>&1 || say "apt-get could not install chromium: $(tail -1 "$FILES/apt-chromium.log")"
  browser=$(command -v chromium || true)
fi
if [ -z "$browser" ]; then
  say "SKIPPED the browser check: no chromium, and it cannot be installed here (needs root and Debian's apt: apt-get install chromium)"
else
  sed 's|</body></html>|<script>addEventListener("load", () => { const i = [...document.images]; const ok = i.filter(x => x.complete \&\& x.naturalWidth > 0 \&\& x.getBoundingClientRect().width > 0).length; const svg = [...document.querySelectorAll("svg.pr-chart")].filter(s => s.getBoundingClientRect().height > 100).length; document.body.dataset.check = `images ${ok}/${i.length} sections ${[...document.querySelectorAll("section")].map(s => s.id).join(",")} charts ${svg}`; });</script></body></html>|' \
    "$FILES/page.html" >"$FILES/page_check.html"
  dom=$(timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$FILES/chromium" \
          --virtual-time-budget=10000 --dump-dom "file://$FILES/page_check.html" 2>"$FILES/chromium.err") ||
    soft_fail "chromium could not render the page: $(grep -v -e dbus -e '^$' "$FILES/chromium.err" | tail -2)"
  seen=$(grep -oE 'data-check="[^"]*"' <<<"$dom" | head -1)
  want_seen="data-check=\"images $((4 * 2 * K + 2))/$((4 * 2 * K + 2)) sections models,image-search,text-search,evaluation charts 2\""
  [ "$seen" = "$want_seen" ] || soft_fail "in chromium: ${seen:-no check result}, expected $want_seen"
  say "chromium ($("$browser" --version 2>/dev/null | head -1 | cut -d' ' -f1-2)): ${seen:-nothing}"
fi

say "bad arguments"
R="SELECT jdsh.report('{rep_a}', 'er', 'png', 'name', '{cat}'"
expect_error 42704 "unknown model" "SELECT jdsh.report('{no_such_model}', 'er', 'png', 'name', '{cat}');"
expect_error 22004 "a NULL relation" "SELECT jdsh.report('{rep_a}', NULL, 'png', 'name', '{cat}');"
expect_error 22004 "a NULL k" "$R, k => NULL);"
expect_error 22004 "jdsh.evaluate with a NULL model" "SELECT * FROM jdsh.evaluate(NULL, 'er', 'h', 'er', 'keywords', 'subcategory_id');"
expect_error 22023 "no models" "SELECT jdsh.report('{}', 'er', 'png', 'name', '{cat}');"
expect_error 22004 "a NULL model" "SELECT jdsh.report('{rep_a,NULL}', 'er', 'png', 'name', '{cat}');"
expect_error 22023 "k = 0" "$R, k => 0);"
expect_error 22023 "one code column for two models" "SELECT jdsh.report('{rep_a,rep_b}', 'er', 'png', 'name', '{cat}', codes => '{ca}');"
expect_error 42804 "a picture column that is not bytea" "SELECT jdsh.report('{rep_a}', 'er', 'h', 'name', '{cat}');"
expect_error 22023 "image_queries without texts" "$R, image_queries => '{CAT FACE}');"
expect_error 22023 "a picture no row has" "$R, encode => 'h', texts => 'er_texts', text_column => 'keywords', image_queries => '{NO SUCH EMOJI}');"
expect_error 22023 "an evaluation protocol with a wrong key" "$R, encode => 'h', evaluation => '[{\"query\": \"er\"}]');"
expect_error 42P01 "an unknown relation" "SELECT jdsh.report('{rep_a}', 'no_such_table', 'png', 'name', '{cat}');"
expect_error 42703 "an unknown column" "$R, encode => 'no_such_column');"
run_errors
say "$ERRORS_CHECKED error checks passed"
q -c "DROP TABLE er, er_texts, emoji_all" -c "SELECT jdsh.drop_model('rep_a'), jdsh.drop_model('rep_b')" >/dev/null
finish
