/**
 * The dashboard's HTML shell. The system Lambda (and the local gateway through it) answers it at `/`,
 * and the shares Lambda answers it when a browser opens a share link, so both need it as a string.
 */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stratus</title>
<link rel="stylesheet" href="/app/app.css">
<script type="module" src="/app/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<div id="app" aria-live="polite"><noscript>Stratus needs JavaScript.</noscript></div>
</body>
</html>
`;

/** The page may talk to its own origin and to storage (S3 presigned URLs are https). */
export const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self' https: http://127.0.0.1:* http://localhost:*; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
};
