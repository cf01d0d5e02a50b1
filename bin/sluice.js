#!/usr/bin/env node
// The `sluice` command. TypeScript sources run through tsx's loader, so a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
