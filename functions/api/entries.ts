/** Entry file of each route group's Lambda, relative to the repo root (read by the CDK app). */
import type { RouteGroup } from '../../shared/http/route.ts';

export const handlerEntries: Record<RouteGroup, string> = {
  auth: 'functions/api/auth.ts',
  folders: 'functions/api/folders.ts',
  files: 'functions/api/files.ts',
  uploads: 'functions/api/uploads.ts',
  account: 'functions/api/account.ts',
  admin: 'functions/api/admin.ts',
  shares: 'functions/api/shares.ts',
  system: 'functions/api/system.ts',
};
