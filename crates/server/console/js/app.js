// @ts-check
/** The console's singletons: sign-in state and the API client bound to it. */

import { createApi } from './api.js';
import { createAuth } from './auth.js';
import { getLang } from './i18n.js';

export const auth = createAuth();
export const api = createApi({ tokens: auth, lang: getLang });
