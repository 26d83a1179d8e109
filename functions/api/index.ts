/** The route groups and the factory of each group's Lambda handler. */
import type { RouteGroup } from '../../shared/http/route.ts';
import type { Container } from '../container.ts';
import { createAccountHandler } from './account.ts';
import { createAdminHandler } from './admin.ts';
import { createAuthHandler } from './auth.ts';
import { createFilesHandler } from './files.ts';
import { createFoldersHandler } from './folders.ts';
import { createSharesHandler } from './shares.ts';
import { createSystemHandler } from './system.ts';
import { createUploadsHandler } from './uploads.ts';

export const handlerFactories: Record<RouteGroup, (c: Container) => ReturnType<typeof createAuthHandler>> = {
  auth: createAuthHandler,
  folders: createFoldersHandler,
  files: createFilesHandler,
  uploads: createUploadsHandler,
  account: createAccountHandler,
  admin: createAdminHandler,
  shares: createSharesHandler,
  system: createSystemHandler,
};
