/**
 * Finding the `qwen-ls` binary: the `qwen-ls.path` setting when set (with `~` and `${workspaceFolder}`
 * expanded, since users copy paths from a shell), else the first executable `qwen-ls` on `PATH`. Resolving it
 * ourselves — instead of letting `spawn` fail — lets the error say which setting to fix. No `vscode` import.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface ResolveEnv {
  /** `process.env.PATH`. */
  pathVar: string | undefined;
  platform: NodeJS.Platform;
  home: string;
  workspaceFolder: string | undefined;
  /** Whether `file` exists and may be executed. */
  isExecutable(file: string): boolean;
}

export type Resolved = { ok: true; path: string } | { ok: false; message: string };

export const BINARY = "qwen-ls";

export function defaultResolveEnv(workspaceFolder: string | undefined): ResolveEnv {
  return {
    pathVar: process.env.PATH,
    platform: process.platform,
    home: os.homedir(),
    workspaceFolder,
    isExecutable(file: string): boolean {
      try {
        fs.accessSync(file, process.platform === "win32" ? fs.constants.F_OK : fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
  };
}

/** Expands `~` and `${workspaceFolder}` in a user-written path. */
export function expandPath(setting: string, env: Pick<ResolveEnv, "home" | "workspaceFolder">): string {
  let result = setting.trim();
  if (result === "~" || result.startsWith("~/")) {
    result = env.home + result.slice(1);
  }
  if (env.workspaceFolder !== undefined) {
    result = result.split("${workspaceFolder}").join(env.workspaceFolder);
  }
  return result;
}

export function resolveServerPath(setting: string | undefined, env: ResolveEnv): Resolved {
  if (setting !== undefined && setting.trim() !== "") {
    const expanded = expandPath(setting, env);
    if (env.isExecutable(expanded)) {
      return { ok: true, path: expanded };
    }
    return { ok: false, message: `qwen-ls.path is "${setting}", but ${expanded} is not an executable file.` };
  }
  const exe = env.platform === "win32" ? `${BINARY}.exe` : BINARY;
  const sep = env.platform === "win32" ? ";" : ":";
  for (const dir of (env.pathVar ?? "").split(sep)) {
    if (dir === "") {
      continue;
    }
    const candidate = path.join(dir, exe);
    if (env.isExecutable(candidate)) {
      return { ok: true, path: candidate };
    }
  }
  return {
    ok: false,
    message: `${BINARY} was not found on PATH. Install it (cargo install --path server) or set qwen-ls.path to the binary.`,
  };
}
