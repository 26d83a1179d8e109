/**
 * The Stratus web dashboard: a dependency-free single page over the public API (the same client
 * code as the CLI). Files go straight to storage through presigned part URLs, several parts at once,
 * with per-file and overall progress, pause/resume, and resume after a reload (the session id is
 * kept in localStorage; the browser needs the file chosen again, as with tus-js-client).
 */
import { createSHA256 } from 'hash-wasm';
import { ApiError, formatBytes, type Item, type NodeInfo, StratusApi, type Tokens } from '../clients/api.ts';
import { fetchWithRetry } from '../clients/retry.ts';
import { type Hashes, hashSource, type PutPart, UploadInterrupted, uploadFile } from '../clients/upload.ts';
import { UploadVerificationFailed } from '../clients/upload-verification.ts';

// ---------------------------------------------------------------- DOM helpers

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

const $app = () => document.getElementById('app') as HTMLElement;
const when = (iso: string) => new Date(iso).toLocaleString();

function announce(message: string, kind: 'info' | 'error' = 'info') {
  const box =
    document.getElementById('toast') ?? document.body.appendChild(h('div', { id: 'toast', role: 'status' }));
  box.className = kind;
  box.textContent = message;
  box.hidden = false;
  clearTimeout(Number(box.dataset.timer));
  box.dataset.timer = String(setTimeout(() => (box.hidden = true), 6000));
}

function problemText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  return (err as Error)?.message ?? String(err);
}

/** A modal form in a <dialog>; resolves with the field values, or undefined when cancelled. */
function ask(
  title: string,
  fields: { name: string; label: string; type?: string; value?: string; options?: [string, string][] }[],
  submit = 'OK',
  extra?: Node,
): Promise<Record<string, string> | undefined> {
  return new Promise((resolve) => {
    const form = h(
      'form',
      { method: 'dialog' },
      h('h2', {}, title),
      extra ?? null,
      fields.map((f) =>
        h(
          'label',
          {},
          f.label,
          f.options
            ? h(
                'select',
                { name: f.name },
                f.options.map(([value, label]) => h('option', { value, selected: value === f.value }, label)),
              )
            : h('input', {
                name: f.name,
                type: f.type ?? 'text',
                value: f.value ?? '',
                required: f.type !== 'password',
              }),
        ),
      ),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', value: 'cancel', onclick: () => close(undefined) }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary' }, submit),
      ),
    );
    const dialog = h('dialog', { 'aria-label': title }, form);
    const close = (v: Record<string, string> | undefined) => {
      dialog.close();
      dialog.remove();
      resolve(v);
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      close(Object.fromEntries([...new FormData(form).entries()].map(([k, v]) => [k, String(v)])));
    });
    dialog.addEventListener('cancel', () => close(undefined));
    document.body.append(dialog);
    dialog.showModal();
    (form.querySelector('input, select') as HTMLElement | null)?.focus();
  });
}

function showDialog(title: string, ...body: Child[]) {
  const dialog = h(
    'dialog',
    { 'aria-label': title },
    h('h2', {}, title),
    ...body,
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => close() }, 'Close')),
  );
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

// ---------------------------------------------------------------- session

const TOKENS_KEY = 'stratus.tokens';
const PENDING_KEY = 'stratus.uploads';

function loadTokens(): Tokens | undefined {
  try {
    return JSON.parse(localStorage.getItem(TOKENS_KEY) ?? 'null') ?? undefined;
  } catch {
    return undefined;
  }
}

const api = new StratusApi({
  endpoint: location.origin,
  tokens: loadTokens(),
  onTokens: (t) => {
    if (t) localStorage.setItem(TOKENS_KEY, JSON.stringify(t));
    else localStorage.removeItem(TOKENS_KEY);
  },
  // 429s and 503s are waited out (Retry-After); the uploads panel says so meanwhile.
  onRetry: (e) => uploads.busy(e.delayMs),
});

let me: { id: string; email: string; role: 'admin' | 'user'; rootFolderId: string } | undefined;

// ---------------------------------------------------------------- sign in / sign up

function renderAuth(message?: string) {
  const error = h('p', { class: 'error', role: 'alert' }, message ?? '');
  const email = h('input', {
    id: 'email',
    name: 'email',
    type: 'email',
    autocomplete: 'username',
    required: true,
  });
  const password = h('input', {
    id: 'password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    minlength: 8,
    required: true,
  });
  const go = async (register: boolean) => {
    error.textContent = '';
    if (!email.reportValidity() || !password.reportValidity()) return;
    try {
      if (register) await api.register(email.value, password.value);
      await api.login(email.value, password.value);
      await start();
    } catch (err) {
      error.textContent = problemText(err);
    }
  };
  const form = h(
    'form',
    { class: 'auth', 'aria-labelledby': 'auth-title' },
    h('h1', { id: 'auth-title' }, 'Stratus'),
    h('p', {}, 'Sign in, or create an account.'),
    h('label', { for: 'email' }, 'Email'),
    email,
    h('label', { for: 'password' }, 'Password (at least 8 characters)'),
    password,
    error,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
      h('button', { type: 'button', onclick: () => go(true) }, 'Create account'),
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void go(false);
  });
  $app().replaceChildren(h('main', { id: 'main' }, form));
  email.focus();
}

// ---------------------------------------------------------------- layout

let refreshView: () => Promise<void> = async () => undefined;

function renderShell() {
  const usage = h('div', { class: 'usage', id: 'usage' });
  const nav = h(
    'nav',
    { 'aria-label': 'Sections' },
    h('a', { href: '#/files/root' }, 'Files'),
    h('a', { href: '#/trash' }, 'Trash'),
    me?.role === 'admin' ? h('a', { href: '#/admin' }, 'Nodes') : null,
  );
  const header = h(
    'header',
    {},
    h('span', { class: 'brand' }, 'Stratus'),
    nav,
    usage,
    h(
      'span',
      { class: 'who' },
      me?.email ?? '',
      ' ',
      h(
        'button',
        {
          type: 'button',
          onclick: async () => {
            await api.logout().catch(() => undefined);
            renderAuth('Signed out.');
          },
        },
        'Sign out',
      ),
    ),
  );
  $app().replaceChildren(header, h('main', { id: 'main', tabindex: -1 }), uploads.panel);
  void refreshUsage();
}

async function refreshUsage() {
  const el = document.getElementById('usage');
  if (!el) return;
  try {
    const u = await api.usage();
    const pct = u.quotaBytes ? (u.usedBytes / u.quotaBytes) * 100 : 0;
    el.replaceChildren(
      h('label', { for: 'usage-meter' }, `${formatBytes(u.usedBytes)} of ${formatBytes(u.quotaBytes)} used`),
      h('meter', { id: 'usage-meter', min: 0, max: 100, value: pct.toFixed(2), high: 90 }),
    );
  } catch {
    el.replaceChildren();
  }
}

// ---------------------------------------------------------------- files

type Sort = 'name' | 'size' | 'modified';
const listing = { sort: 'name' as Sort, dir: 'asc' as 'asc' | 'desc' };

async function breadcrumbs(folder: Item): Promise<Item[]> {
  const chain = [folder];
  let at = folder;
  while (at.parentId && chain.length < 64) {
    at = await api.folder(at.parentId);
    chain.unshift(at);
  }
  return chain;
}

async function renderFolder(folderId: string) {
  const main = document.getElementById('main') as HTMLElement;
  const folder = await api.folder(folderId);
  const chain = await breadcrumbs(folder);
  const tbody = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  let cursor: string | undefined;

  const loadPage = async () => {
    const page = await api.children(folder.id, { cursor, limit: 50, sort: listing.sort, dir: listing.dir });
    for (const item of page.items) tbody.append(row(item));
    cursor = page.nextCursor ?? undefined;
    more.hidden = !cursor;
    if (!tbody.children.length)
      tbody.append(h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'Empty folder. Drop files here.')));
  };
  more.addEventListener('click', () => void loadPage());

  const sortHeader = (key: Sort, label: string) => {
    const active = listing.sort === key;
    return h(
      'th',
      { scope: 'col', 'aria-sort': active ? (listing.dir === 'asc' ? 'ascending' : 'descending') : 'none' },
      h(
        'button',
        {
          type: 'button',
          class: 'sort',
          onclick: () => {
            listing.dir = active && listing.dir === 'asc' ? 'desc' : 'asc';
            listing.sort = key;
            void renderFolder(folder.id);
          },
        },
        label,
        active ? (listing.dir === 'asc' ? ' ▲' : ' ▼') : '',
      ),
    );
  };

  const fileInput = h('input', {
    type: 'file',
    multiple: true,
    id: 'upload-files',
    class: 'visually-hidden',
  });
  fileInput.addEventListener('change', () => {
    for (const f of fileInput.files ?? []) uploads.add(f, folder.id, f.name);
    fileInput.value = '';
  });
  const dirInput = h('input', {
    type: 'file',
    id: 'upload-folder',
    class: 'visually-hidden',
    webkitdirectory: true,
  });
  dirInput.addEventListener('change', () => {
    for (const f of dirInput.files ?? []) uploads.add(f, folder.id, f.webkitRelativePath || f.name);
    dirInput.value = '';
  });

  const zone = h(
    'section',
    { class: 'folder', 'aria-label': `Folder ${folder.parentId ? folder.name : 'My files'}` },
    h(
      'nav',
      { 'aria-label': 'Breadcrumb', class: 'crumbs' },
      h(
        'ol',
        {},
        chain.map((f, i) =>
          h(
            'li',
            {},
            i === chain.length - 1
              ? h('span', { 'aria-current': 'page' }, f.parentId ? f.name : 'My files')
              : h('a', { href: `#/files/${f.id}` }, f.parentId ? f.name : 'My files'),
          ),
        ),
      ),
    ),
    h(
      'div',
      { class: 'toolbar' },
      h(
        'button',
        {
          type: 'button',
          onclick: async () => {
            const v = await ask('New folder', [{ name: 'name', label: 'Folder name' }], 'Create');
            if (!v?.name) return;
            try {
              await api.createFolder(folder.id, v.name);
              await renderFolder(folder.id);
            } catch (err) {
              announce(problemText(err), 'error');
            }
          },
        },
        'New folder',
      ),
      h('label', { for: 'upload-files', class: 'button primary', tabindex: 0 }, 'Upload files'),
      fileInput,
      h('label', { for: 'upload-folder', class: 'button', tabindex: 0 }, 'Upload folder'),
      dirInput,
    ),
    h(
      'table',
      { class: 'items' },
      h('caption', { class: 'visually-hidden' }, 'Files and folders'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          sortHeader('name', 'Name'),
          sortHeader('size', 'Size'),
          sortHeader('modified', 'Modified'),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
        ),
      ),
      tbody,
    ),
    more,
    h('p', { class: 'hint' }, 'Drag and drop files or folders anywhere on this page to upload them here.'),
  );
  for (const label of zone.querySelectorAll<HTMLLabelElement>('label.button'))
    label.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        label.click();
      }
    });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('dragging');
    void dropped(e.dataTransfer, folder.id);
  });
  main.replaceChildren(zone);
  refreshView = () => renderFolder(folder.id);
  await loadPage();
}

/** Files and whole folders dropped on the page (folders through the entries API). */
async function dropped(dt: DataTransfer | null, parentId: string) {
  if (!dt) return;
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (!entries.length) {
    for (const f of dt.files) uploads.add(f, parentId, f.name);
    return;
  }
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      uploads.add(file, parentId, prefix + file.name);
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const e of entries) await walk(e, '');
}

function row(item: Item): HTMLTableRowElement {
  const act = (label: string, run: () => Promise<void>) =>
    h(
      'button',
      {
        type: 'button',
        'aria-label': `${label} ${item.name}`,
        onclick: () =>
          run().catch((err: unknown) => {
            announce(problemText(err), 'error');
          }),
      },
      label,
    );
  const actions: HTMLElement[] = [];
  if (item.type === 'file') actions.push(act('Download', () => download(item)));
  actions.push(
    act('Rename', () => rename(item)),
    act('Move', () => move(item)),
  );
  if (item.type === 'file') actions.push(act('Versions', () => versions(item)));
  actions.push(
    act('Share', () => share(item)),
    act('Delete', () => remove(item)),
  );
  return h(
    'tr',
    { 'data-name': item.name },
    h(
      'td',
      { class: 'name' },
      item.type === 'folder'
        ? h('a', { href: `#/files/${item.id}`, class: 'folder-link' }, `${item.name}/`)
        : h('span', { class: 'file-name' }, item.name),
    ),
    h('td', { class: 'size' }, item.type === 'file' ? formatBytes(item.size ?? 0) : '—'),
    h('td', { class: 'modified' }, h('time', { datetime: item.modifiedAt }, when(item.modifiedAt))),
    h('td', {}, h('div', { class: 'actions row-actions' }, actions)),
  );
}

async function download(item: Item, versionId?: string) {
  const { url } = await api.downloadUrl(item.id, versionId);
  const a = h('a', { href: url, download: item.name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

async function rename(item: Item) {
  const v = await ask(
    `Rename ${item.name}`,
    [{ name: 'name', label: 'New name', value: item.name }],
    'Rename',
  );
  if (!v?.name || v.name === item.name) return;
  await api.patch(item, { name: v.name });
  announce(`Renamed to ${v.name}`);
  await refreshView();
}

async function move(item: Item) {
  const v = await ask(
    `Move ${item.name}`,
    [{ name: 'path', label: 'Destination folder (a path such as /Docs)', value: '/' }],
    'Move',
  );
  if (!v?.path) return;
  const dest = await api.resolve(v.path);
  if (dest.type !== 'folder') throw new Error(`${v.path} is not a folder`);
  await api.patch(item, { parentId: dest.id });
  announce(`Moved ${item.name} to ${v.path}`);
  await refreshView();
}

async function remove(item: Item) {
  const v = await ask(`Move ${item.name} to the trash?`, [], 'Move to trash');
  if (!v) return;
  await api.remove(item);
  announce(`${item.name} is in the trash`);
  await refreshView();
  void refreshUsage();
}

async function versions(item: Item) {
  const list = await api.versions(item.id);
  const { close } = showDialog(
    `Versions of ${item.name}`,
    h(
      'table',
      { class: 'versions' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Saved'),
          h('th', { scope: 'col' }, 'Size'),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
        ),
      ),
      h(
        'tbody',
        {},
        list.map((v, i) =>
          h(
            'tr',
            { 'data-version': v.versionId },
            h('td', {}, when(v.createdAt), v.current ? ' (current)' : ''),
            h('td', {}, formatBytes(v.size)),
            h(
              'td',
              {},
              h(
                'button',
                {
                  type: 'button',
                  'aria-label': `Download version ${list.length - i}`,
                  onclick: () =>
                    void download(item, v.versionId).catch((e: unknown) => announce(problemText(e), 'error')),
                },
                'Download',
              ),
              v.current
                ? null
                : h(
                    'button',
                    {
                      type: 'button',
                      'aria-label': `Restore version ${list.length - i}`,
                      onclick: async () => {
                        try {
                          await api.restoreVersion(item.id, v.versionId);
                          close();
                          announce(`Restored the version from ${when(v.createdAt)}`);
                          await refreshView();
                        } catch (err) {
                          announce(problemText(err), 'error');
                        }
                      },
                    },
                    'Restore',
                  ),
            ),
          ),
        ),
      ),
    ),
  );
}

async function share(item: Item) {
  const v = await ask(
    `Share ${item.name}`,
    [
      {
        name: 'expires',
        label: 'Link expires after',
        value: '604800',
        options: [
          ['3600', '1 hour'],
          ['86400', '1 day'],
          ['604800', '7 days'],
          ['2592000', '30 days'],
        ],
      },
      { name: 'password', label: 'Password (optional)', type: 'password' },
    ],
    'Create link',
  );
  if (!v) return;
  const link = await api.createShare(item.id, Number(v.expires), v.password || undefined);
  const input = h('input', { id: 'share-url', readonly: true, value: link.url, 'aria-label': 'Share link' });
  showDialog(
    'Share link',
    h('p', {}, `Anyone with this link can open ${item.name} until ${when(link.expiresAt)}.`),
    input,
    h(
      'button',
      {
        type: 'button',
        onclick: async () => {
          input.select();
          await navigator.clipboard?.writeText(link.url).catch(() => undefined);
          announce('Link copied');
        },
      },
      'Copy',
    ),
  );
  input.select();
}

// ---------------------------------------------------------------- trash

async function renderTrash() {
  const main = document.getElementById('main') as HTMLElement;
  const items = await api.trash();
  const body = items.length
    ? h(
        'table',
        { class: 'items' },
        h('caption', { class: 'visually-hidden' }, 'Trash'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'Name'),
            h('th', { scope: 'col' }, 'Deleted'),
            h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
          ),
        ),
        h(
          'tbody',
          {},
          items.map((t) =>
            h(
              'tr',
              { 'data-name': t.name },
              h('td', {}, t.type === 'folder' ? `${t.name}/` : t.name),
              h('td', {}, when(t.deletedAt)),
              h(
                'td',
                { class: 'row-actions' },
                h(
                  'button',
                  {
                    type: 'button',
                    'aria-label': `Restore ${t.name}`,
                    onclick: async () => {
                      try {
                        await api.restoreFromTrash(t.id);
                        announce(`Restored ${t.name}`);
                        await renderTrash();
                      } catch (err) {
                        announce(problemText(err), 'error');
                      }
                    },
                  },
                  'Restore',
                ),
                h(
                  'button',
                  {
                    type: 'button',
                    'aria-label': `Delete ${t.name} forever`,
                    onclick: async () => {
                      if (!(await ask(`Delete ${t.name} forever?`, [], 'Delete forever'))) return;
                      await api.purge(t.id);
                      await renderTrash();
                      void refreshUsage();
                    },
                  },
                  'Delete forever',
                ),
              ),
            ),
          ),
        ),
      )
    : h('p', { class: 'empty' }, 'The trash is empty.');
  main.replaceChildren(
    h(
      'section',
      { 'aria-labelledby': 'trash-title' },
      h('h1', { id: 'trash-title' }, 'Trash'),
      items.length
        ? h(
            'button',
            {
              type: 'button',
              onclick: async () => {
                if (!(await ask('Empty the trash?', [], 'Empty trash'))) return;
                await api.purge();
                await renderTrash();
                void refreshUsage();
              },
            },
            'Empty trash',
          )
        : null,
      body,
    ),
  );
  refreshView = renderTrash;
}

// ---------------------------------------------------------------- admin

let adminTimer: ReturnType<typeof setInterval> | undefined;

async function renderAdmin() {
  const main = document.getElementById('main') as HTMLElement;
  const [nodes, repl] = await Promise.all([api.nodes(), api.replication()]);
  const inPlace = repl.versions ? ((repl.versions - repl.belowReplicationFactor) / repl.versions) * 100 : 100;
  const healthRow = (n: NodeInfo) =>
    h(
      'tr',
      { 'data-node': n.id },
      h('td', {}, n.id),
      h('td', {}, n.kind),
      h('td', {}, n.region ?? '—'),
      h('td', {}, n.state),
      h('td', { class: `health ${n.health}` }, n.health),
      h('td', {}, n.latencyMs === null ? '—' : `${n.latencyMs.toFixed(0)} ms`),
      h('td', {}, n.replicas),
    );
  main.replaceChildren(
    h(
      'section',
      { 'aria-labelledby': 'nodes-title' },
      h('h1', { id: 'nodes-title' }, 'Storage nodes'),
      h('p', {}, `Replication factor ${nodes.replicationFactor}.`),
      h(
        'table',
        { class: 'items' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Node', 'Kind', 'Region', 'State', 'Health', 'Latency', 'Replicas'].map((t) =>
              h('th', { scope: 'col' }, t),
            ),
          ),
        ),
        h('tbody', {}, nodes.items.map(healthRow)),
      ),
      h('h2', {}, 'Replication and rebalancing'),
      h(
        'label',
        { for: 'replication' },
        `${inPlace.toFixed(1)}% of ${repl.versions} versions fully replicated`,
      ),
      h('progress', { id: 'replication', max: 100, value: inPlace.toFixed(1) }),
      h(
        'p',
        {},
        `${repl.pending} copies pending, ${repl.failed} failed, ${repl.belowReplicationFactor} below the factor.`,
      ),
    ),
  );
  refreshView = renderAdmin;
  clearInterval(adminTimer);
  adminTimer = setInterval(() => {
    if (location.hash === '#/admin') void renderAdmin().catch(() => undefined);
    else clearInterval(adminTimer);
  }, 5000);
}

// ---------------------------------------------------------------- uploads

interface Pending {
  uploadId: string;
  fingerprint: string;
  name: string;
  size: number;
  parentId: string;
  path: string;
}

/** Parts in flight per file: 4, or what `localStorage['stratus.parallel']` says (1 to 16; slow links). */
const partsInParallel = () => {
  const n = Number(localStorage.getItem('stratus.parallel'));
  return Number.isInteger(n) && n >= 1 && n <= 16 ? n : 4;
};

const fingerprint = (f: File) => `${f.name}|${f.size}|${f.lastModified}`;

function loadPending(): Pending[] {
  try {
    return JSON.parse(localStorage.getItem(PENDING_KEY) ?? '[]') as Pending[];
  } catch {
    return [];
  }
}

function savePending(list: Pending[]) {
  localStorage.setItem(PENDING_KEY, JSON.stringify(list));
}

const xhrPut: PutPart = (part, body, onProgress, signal) =>
  new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', part.url);
    for (const [k, v] of Object.entries(part.headers))
      if (!['content-length', 'host'].includes(k.toLowerCase())) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => onProgress(e.loaded);
    x.onload = () =>
      resolve({
        status: x.status,
        etag: x.getResponseHeader('etag'),
        retryAfter: x.getResponseHeader('retry-after'),
      });
    x.onerror = () => reject(new Error('network error while sending a part'));
    x.onabort = () => reject(new UploadInterrupted(undefined));
    signal?.addEventListener('abort', () => x.abort());
    x.send(body as Uint8Array<ArrayBuffer>);
  });

/**
 * `verifying`: every byte is sent and the service is checking them (in the complete request, or in
 * the background for a big file, with its progress); the file is not there until that passes.
 */
type JobState =
  | 'waiting'
  | 'hashing'
  | 'uploading'
  | 'verifying'
  | 'paused'
  | 'done'
  | 'failed'
  | 'interrupted';

/**
 * Whether trying a failed upload again can help. Refusals that will not change by repeating
 * (quota, type policy, a bad or conflicting request: 4xx but 408/429, and 507) offer no Retry;
 * network failures, 5xx and a rate limit that outlasted the client's patience do.
 */
function worthRetrying(err: unknown): boolean {
  // The service read the bytes back and refused them: the same bytes will be refused again.
  if (err instanceof UploadVerificationFailed) return false;
  if (!(err instanceof ApiError)) return true;
  if (err.status === 0 || err.status === 408 || err.status === 429) return true;
  return err.status >= 500 && err.status !== 507;
}

/** After uploads finish, the listing and usage meter are refreshed at most once a second (not per file). */
let lastRefresh = 0;
let refreshQueued = false;
function refreshAfterUpload() {
  const run = () => {
    refreshQueued = false;
    lastRefresh = Date.now();
    void refreshView();
    void refreshUsage();
  };
  const wait = lastRefresh + 1000 - Date.now();
  if (wait <= 0) run();
  else if (!refreshQueued) {
    refreshQueued = true;
    setTimeout(run, wait);
  }
}

interface Job {
  key: number;
  file?: File;
  parentId: string;
  path: string;
  size: number;
  state: JobState;
  done: number;
  total: number;
  startedAt: number;
  uploadId?: string;
  hashes?: Hashes;
  controller?: AbortController;
  error?: string;
  /** For a failed job: whether Retry is offered. */
  retryable?: boolean;
  /** While verifying: whether `done` counts bytes the service's verifier has read (else: no figure yet). */
  verifyProgress?: boolean;
  el: HTMLLIElement;
}

class Uploads {
  readonly panel = h('aside', { class: 'uploads', 'aria-label': 'Uploads', hidden: true });
  private readonly list = h('ul', {});
  private readonly overall = h('progress', { id: 'overall-progress', max: 100, value: 0 });
  private readonly overallText = h('span', { id: 'overall-text' }, '');
  private readonly jobs: Job[] = [];
  private seq = 0;
  private readonly folders = new Map<string, Promise<string>>();
  private busyUntil = 0;
  private busyTimer: ReturnType<typeof setTimeout> | undefined;

  /** The server asked us to slow down (429/503): say so until the wait is over. */
  busy(ms: number) {
    this.busyUntil = Math.max(this.busyUntil, Date.now() + ms);
    clearTimeout(this.busyTimer);
    this.busyTimer = setTimeout(() => this.drawOverall(), this.busyUntil - Date.now() + 10);
    this.drawOverall();
  }

  constructor() {
    this.panel.append(
      h(
        'div',
        { class: 'panel-head' },
        h('h2', {}, 'Uploads'),
        h('button', { type: 'button', onclick: () => this.clearFinished() }, 'Clear finished'),
      ),
      h('label', { for: 'overall-progress' }, 'Overall '),
      this.overall,
      ' ',
      this.overallText,
      this.list,
    );
  }

  /** Sessions left by a reload or a closed tab: shown so the user can pick the file again. */
  restore() {
    for (const p of loadPending()) {
      if (this.jobs.some((j) => j.uploadId === p.uploadId)) continue;
      const job = this.make(undefined, p.parentId, p.path, p.size);
      job.uploadId = p.uploadId;
      job.state = 'interrupted';
      this.draw(job);
    }
  }

  add(file: File, parentId: string, relPath: string) {
    const job = this.make(file, parentId, relPath, file.size);
    this.draw(job);
    this.pump();
  }

  private make(file: File | undefined, parentId: string, path: string, size: number): Job {
    const job: Job = {
      key: ++this.seq,
      ...(file ? { file } : {}),
      parentId,
      path,
      size,
      state: 'waiting',
      done: 0,
      total: size,
      startedAt: Date.now(),
      el: h('li', { 'data-path': path }),
    };
    this.jobs.push(job);
    this.list.append(job.el);
    this.panel.hidden = false;
    return job;
  }

  private pump() {
    // A file the service verifies in the background only polls now: the next one may start.
    const active = this.jobs.filter(
      (j) =>
        j.state === 'hashing' || j.state === 'uploading' || (j.state === 'verifying' && !j.verifyProgress),
    ).length;
    const next = this.jobs.find((j) => j.state === 'waiting');
    if (next && active < 2) {
      void this.run(next);
      this.pump();
    }
  }

  private forgetFolders(job: Job) {
    let key = job.parentId;
    for (const name of job.path.split('/').slice(0, -1)) {
      key = `${key}/${name.toLowerCase()}`;
      this.folders.delete(key);
    }
  }

  private async folderFor(job: Job): Promise<string> {
    const dirs = job.path.split('/').slice(0, -1);
    let parent = job.parentId;
    let key = parent;
    for (const name of dirs) {
      key = `${key}/${name.toLowerCase()}`;
      const p = parent;
      let made = this.folders.get(key);
      if (!made) {
        made = (async () => {
          try {
            return (await api.createFolder(p, name)).id;
          } catch (err) {
            if (!(err instanceof ApiError && err.status === 409)) throw err;
            const there = (await api.allChildren(p)).find((c) => c.name.toLowerCase() === name.toLowerCase());
            if (there?.type !== 'folder') throw err;
            return there.id;
          }
        })();
        this.folders.set(key, made);
      }
      parent = await made;
    }
    return parent;
  }

  private async run(job: Job) {
    const file = job.file;
    if (!file) return;
    job.controller = new AbortController();
    job.state = job.hashes ? 'uploading' : 'hashing';
    job.startedAt = Date.now();
    job.done = 0;
    job.verifyProgress = false;
    this.draw(job);
    try {
      const parentId = await this.folderFor(job).catch((err: unknown) => {
        // A failed folder creation is not cached: the next file (or Retry) tries again.
        this.forgetFolders(job);
        throw err;
      });
      const name = job.path.split('/').at(-1) as string;
      // No base version: an upload to a taken name becomes that file's new version (its unchanged
      // parts are reused server-side), as Dropbox's web uploads do; no per-file listing of the folder.
      const source = {
        size: file.size,
        read: async (s: number, e: number) => new Uint8Array(await file.slice(s, e).arrayBuffer()),
      };
      const newHasher = async () => {
        const hasher = await createSHA256();
        return { update: (b: Uint8Array) => void hasher.update(b), digest: () => hasher.digest('hex') };
      };
      job.hashes ??= await hashSource(
        source,
        newHasher,
        undefined,
        (p) => {
          job.done = p.done;
          job.total = p.total;
          this.draw(job);
        },
        job.controller.signal,
      );
      job.state = 'uploading';
      job.startedAt = Date.now();
      const result = await uploadFile({
        api,
        source,
        parentId,
        name,
        contentType: file.type || undefined,
        newHasher,
        putPart: xhrPut,
        concurrency: partsInParallel(),
        hashes: job.hashes,
        resumeUploadId: job.uploadId,
        signal: job.controller.signal,
        onSession: (uploadId) => {
          job.uploadId = uploadId;
          const list = loadPending().filter((p) => p.uploadId !== uploadId);
          list.push({
            uploadId,
            fingerprint: fingerprint(file),
            name: file.name,
            size: file.size,
            parentId: job.parentId,
            path: job.path,
          });
          savePending(list);
        },
        onProgress: (p) => {
          if (p.phase === 'uploading') {
            job.done = p.done;
            job.total = p.total;
          } else if (p.phase === 'completing' || p.phase === 'verifying') {
            // Sent, not yet stored: the service checks the bytes (a big file's in the background).
            if (job.state !== 'verifying') job.startedAt = Date.now();
            const background = p.phase === 'verifying' && !job.verifyProgress;
            job.state = 'verifying';
            job.verifyProgress = p.phase === 'verifying';
            job.done = p.phase === 'verifying' ? p.done : 0;
            job.total = p.phase === 'verifying' ? p.total : job.size;
            if (background) this.pump();
          } else return;
          this.draw(job);
        },
      });
      job.state = 'done';
      job.done = job.total;
      savePending(loadPending().filter((p) => p.uploadId !== result.uploadId));
      delete job.error;
      announce(`Uploaded ${job.path}`);
      refreshAfterUpload();
    } catch (err) {
      if (err instanceof UploadInterrupted) job.state = 'paused';
      else {
        // A refused session is over: nothing to resume after a reload.
        if (err instanceof UploadVerificationFailed)
          savePending(loadPending().filter((p) => p.uploadId !== err.uploadId));
        job.state = 'failed';
        job.error = problemText(err);
        job.retryable = worthRetrying(err);
        announce(`${job.path}: ${job.error}`, 'error');
      }
    }
    this.draw(job);
    this.pump();
  }

  private clearFinished() {
    for (const job of this.jobs.filter((j) => j.state === 'done')) {
      this.jobs.splice(this.jobs.indexOf(job), 1);
      job.el.remove();
    }
    this.drawOverall();
  }

  private pause(job: Job) {
    job.controller?.abort();
  }

  private resume(job: Job) {
    job.state = 'waiting';
    this.draw(job);
    this.pump();
  }

  private async cancel(job: Job) {
    job.controller?.abort();
    if (job.uploadId) await api.abortUpload(job.uploadId).catch(() => undefined);
    savePending(loadPending().filter((p) => p.uploadId !== job.uploadId));
    this.jobs.splice(this.jobs.indexOf(job), 1);
    job.el.remove();
    this.drawOverall();
  }

  private draw(job: Job) {
    const pct = job.total ? Math.min(100, (job.done / job.total) * 100) : job.state === 'done' ? 100 : 0;
    const secs = (Date.now() - job.startedAt) / 1000;
    const speed = secs > 0.2 ? job.done / secs : 0;
    const eta = speed > 0 ? Math.ceil((job.total - job.done) / speed) : undefined;
    const id = `job-${job.key}`;
    const status =
      job.state === 'uploading' || job.state === 'hashing'
        ? `${job.state === 'hashing' ? 'Checking' : 'Uploading'} ${pct.toFixed(0)}% · ${formatBytes(speed)}/s${eta !== undefined ? ` · ${eta}s left` : ''}`
        : job.state === 'verifying'
          ? job.verifyProgress
            ? `Verifying ${pct.toFixed(0)}%`
            : 'Verifying…'
          : job.state === 'interrupted'
            ? 'Interrupted: choose the file again to resume'
            : job.state === 'failed'
              ? `Failed: ${job.error ?? ''}`
              : job.state === 'done'
                ? 'Done'
                : job.state === 'paused'
                  ? `Paused at ${pct.toFixed(0)}%`
                  : 'Waiting';
    const controls: HTMLElement[] = [];
    if (job.state === 'uploading' || job.state === 'hashing')
      controls.push(
        h(
          'button',
          { type: 'button', 'aria-label': `Pause ${job.path}`, onclick: () => this.pause(job) },
          'Pause',
        ),
      );
    if (job.state === 'paused')
      controls.push(
        h(
          'button',
          { type: 'button', 'aria-label': `Resume ${job.path}`, onclick: () => this.resume(job) },
          'Resume',
        ),
      );
    if (job.state === 'failed' && job.retryable)
      controls.push(
        h(
          'button',
          { type: 'button', 'aria-label': `Retry ${job.path}`, onclick: () => this.resume(job) },
          'Retry',
        ),
      );
    if (job.state === 'interrupted') {
      const pick = h('input', {
        type: 'file',
        id: `${id}-file`,
        class: 'visually-hidden',
        'aria-label': `Choose ${job.path} again to resume`,
      });
      pick.addEventListener('change', () => {
        const f = pick.files?.[0];
        const saved = loadPending().find((p) => p.uploadId === job.uploadId);
        if (!f) return;
        if (saved && fingerprint(f) !== saved.fingerprint) {
          announce(`That is not the same file as ${job.path} (name, size or date differ)`, 'error');
          return;
        }
        job.file = f;
        this.resume(job);
      });
      controls.push(h('label', { for: `${id}-file`, class: 'button', tabindex: 0 }, 'Choose file'), pick);
    }
    // While verifying, the bytes are the service's: it commits or refuses them whatever this page does.
    if (job.state !== 'done' && job.state !== 'verifying') {
      const verb = job.state === 'failed' ? 'Dismiss' : 'Cancel';
      controls.push(
        h(
          'button',
          { type: 'button', 'aria-label': `${verb} ${job.path}`, onclick: () => void this.cancel(job) },
          verb,
        ),
      );
    }
    job.el.dataset.state = job.state;
    job.el.replaceChildren(
      h('label', { for: id, class: 'file' }, job.path),
      // No figure yet while the service verifies: an indeterminate bar, not a stuck 100%.
      h('progress', {
        id,
        max: 100,
        ...(job.state === 'verifying' && !job.verifyProgress ? {} : { value: pct.toFixed(1) }),
      }),
      h('span', { class: 'status', role: 'status' }, status),
      h('span', { class: 'controls' }, controls),
    );
    this.drawOverall();
  }

  /**
   * The overall bar and line count failures as failures: the bar reaches 100% only when every file
   * is done, and the line says how many are done, failed, paused, in progress or need their file again.
   */
  private drawOverall() {
    const count = (...states: JobState[]) => this.jobs.filter((j) => states.includes(j.state)).length;
    const live = this.jobs.filter((j) => j.state !== 'interrupted');
    const total = live.reduce((s, j) => s + j.size, 0);
    const done = live.reduce(
      (s, j) =>
        s +
        (j.state === 'done' || j.state === 'verifying'
          ? j.size
          : j.state === 'uploading' || j.state === 'paused'
            ? (j.done / (j.total || 1)) * j.size
            : 0),
      0,
    );
    const finished = count('done');
    const failed = count('failed');
    const active = count('waiting', 'hashing', 'uploading', 'verifying');
    const paused = count('paused');
    const interrupted = count('interrupted');
    const allDone = finished === this.jobs.length;
    // Never round up to 100% while anything is left: 99.6% of the bytes with a failure is not done.
    const pct = allDone ? 100 : Math.min(99, Math.floor(total ? (done / total) * 100 : 0));
    this.overall.value = allDone ? 100 : total ? Math.min(99.9, (done / total) * 100) : 0;
    const parts = [`${pct}%`];
    if (allDone) parts.push(`all ${finished} done`);
    else {
      parts.push(`${finished} of ${this.jobs.length} done`);
      if (active) parts.push(`${active} in progress`);
      if (paused) parts.push(`${paused} paused`);
      if (failed) parts.push(`${failed} failed`);
      if (interrupted) parts.push(`${interrupted} to resume`);
      if (active && Date.now() < this.busyUntil) parts.push('server busy, retrying');
    }
    this.overallText.textContent = parts.join(' · ');
    this.overallText.dataset.state = allDone
      ? 'done'
      : active
        ? 'active'
        : failed
          ? 'failed'
          : paused || interrupted
            ? 'paused'
            : 'done';
    if (!this.jobs.length) this.panel.hidden = true;
  }
}

const uploads = new Uploads();

// ---------------------------------------------------------------- public share page

async function renderShare(token: string) {
  const base = `/s/${encodeURIComponent(token)}`;
  const main = h('main', { id: 'main', class: 'share' }, h('h1', {}, 'Shared with you'));
  $app().replaceChildren(main);
  const status = h('p', { role: 'status' });
  let password: string | undefined;
  const call = async <T>(path: string, format: 'info' | 'json'): Promise<T> => {
    const res = await fetchWithRetry(fetch, `${path}?format=${format}`, {
      headers: {
        accept: 'application/json',
        ...(password !== undefined ? { 'x-share-password': password } : {}),
      },
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new ApiError(res.status, body as Record<string, unknown>);
    return body as T;
  };
  const fetchFile = async (path: string) => {
    const r = await call<{ url: string }>(path, 'json');
    const a = h('a', { href: r.url, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  };
  const show = async () => {
    try {
      const r = await call<
        | { file: { id: string; name: string; size: number } }
        | { folder: { name: string }; items: { id: string; name: string; type: string; size?: number }[] }
      >(base, 'info');
      if ('file' in r) {
        main.replaceChildren(
          h('h1', {}, r.file.name),
          h('p', {}, formatBytes(r.file.size)),
          h(
            'button',
            { type: 'button', class: 'primary', onclick: () => void fetchFile(base).catch(fail) },
            'Download',
          ),
          status,
        );
      } else {
        main.replaceChildren(
          h('h1', {}, r.folder.name),
          h(
            'ul',
            { class: 'shared-items' },
            r.items.map((i) =>
              h(
                'li',
                {},
                `${i.type === 'folder' ? `${i.name}/` : i.name} `,
                i.type === 'file'
                  ? h(
                      'button',
                      {
                        type: 'button',
                        'aria-label': `Download ${i.name}`,
                        onclick: () => void fetchFile(`${base}/${i.id}`).catch(fail),
                      },
                      'Download',
                    )
                  : null,
              ),
            ),
          ),
          status,
        );
      }
    } catch (err) {
      fail(err);
    }
  };
  const fail = (err: unknown) => {
    if (
      err instanceof ApiError &&
      (err.slug === 'share-password-required' || err.slug === 'share-password-invalid')
    ) {
      const input = h('input', { id: 'share-password', type: 'password', required: true });
      const form = h(
        'form',
        {},
        h(
          'label',
          { for: 'share-password' },
          err.slug === 'share-password-invalid'
            ? 'Wrong password. Try again:'
            : 'This link needs a password:',
        ),
        input,
        h('button', { type: 'submit', class: 'primary' }, 'Open'),
      );
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        password = input.value;
        void show();
      });
      main.replaceChildren(h('h1', {}, 'Shared with you'), form);
      input.focus();
      return;
    }
    main.replaceChildren(
      h('h1', {}, 'Shared with you'),
      h('p', { role: 'alert', class: 'error' }, problemText(err)),
    );
  };
  await show();
}

// ---------------------------------------------------------------- routing

async function route() {
  if (!me) return;
  const hash = location.hash || '#/files/root';
  try {
    if (hash.startsWith('#/files/')) await renderFolder(decodeURIComponent(hash.slice('#/files/'.length)));
    else if (hash === '#/trash') await renderTrash();
    else if (hash === '#/admin' && me.role === 'admin') await renderAdmin();
    else location.hash = '#/files/root';
    for (const a of document.querySelectorAll('header nav a'))
      a.toggleAttribute('aria-current', hash.startsWith((a as HTMLAnchorElement).hash.replace(/root$/, '')));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401)
      return renderAuth('Your session ended. Sign in again.');
    announce(problemText(err), 'error');
  }
}

async function start() {
  try {
    me = await api.me();
  } catch {
    me = undefined;
    renderAuth();
    return;
  }
  renderShell();
  uploads.restore();
  await route();
}

window.addEventListener('hashchange', () => void route());
window.addEventListener('beforeunload', (e) => {
  if (document.querySelector('.uploads li[data-state="uploading"]')) e.preventDefault();
});

if (location.pathname.startsWith('/s/'))
  void renderShare(decodeURIComponent(location.pathname.slice(3).split('/')[0] ?? ''));
else void start();
