// The page's JSON config block (<script type="application/json" id="console-config">), written by the
// server (vodscribe/api/console.py): the language table, the subtitle reading rules, the version.
export const config = Object.freeze(JSON.parse(document.getElementById("console-config").textContent));
