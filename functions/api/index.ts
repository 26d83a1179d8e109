/** The route groups and the factory of each group's Lambda handler. */
import type { RouteGroup } from '../../shared/http/route.ts';
import type { AwsModules } from '../aws-container.ts';
import type { Container } from '../container.ts';
import * as account from './account.ts';
import * as admin from './admin.ts';
import * as auth from './auth.ts';
import * as files from './files.ts';
import * as folders from './folders.ts';
import * as shares from './shares.ts';
import * as system from './system.ts';
import * as uploads from './uploads.ts';

export const handlerFactories: Record<
  RouteGroup,
  (c: Container) => ReturnType<typeof auth.createAuthHandler>
> = {
  auth: auth.createAuthHandler,
  folders: folders.createFoldersHandler,
  files: files.createFilesHandler,
  uploads: uploads.createUploadsHandler,
  account: account.createAccountHandler,
  admin: admin.createAdminHandler,
  shares: shares.createSharesHandler,
  system: system.createSystemHandler,
};

/** The aws modules each group's Lambda composes (its entry file says; tests compose the same). */
export const groupModules: Record<RouteGroup, AwsModules> = {
  auth: auth.modules,
  folders: folders.modules,
  files: files.modules,
  uploads: uploads.modules,
  account: account.modules,
  admin: admin.modules,
  shares: shares.modules,
  system: system.modules,
};
