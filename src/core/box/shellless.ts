import type * as tarStream from 'tar-stream';
import { SandboxError } from '../errors';

/**
 * A box on an image without `/bin/sh` (a Docker Hardened Image's runtime variant, a distroless or scratch image).
 * Its main process cannot be the shell keep-alive loop, so the box gets its own: a tiny static program written
 * here, byte for byte, that ignores every signal it can and then waits forever. It reaches the box through a
 * small volume filled by a never-started helper (the archive API), mounted read-only at `TOOLS_DIR`: nothing of
 * the host is mounted and nothing of the image runs outside the box.
 */

/** Where the box's own tools volume is mounted (read-only) in a box without a shell. */
export const TOOLS_DIR = '/.agent-sandbox';
export const KEEPALIVE_PROGRAM = `${TOOLS_DIR}/keepalive`;

/**
 * x86-64 machine code (assembled from the listing below, position independent):
 *
 *     mov r12d, 1
 *   1: mov edi, r12d; lea rsi, [rip+act]; xor edx, edx; mov r10d, 8
 *     mov eax, 13; syscall            ; rt_sigaction(sig, {SIG_IGN}, NULL, 8) — fails harmlessly for KILL and STOP
 *     inc r12d; cmp r12d, 65; jne 1b
 *   2: mov eax, 34; syscall; jmp 2b   ; pause() forever
 *   act: .quad 1, 0, 0, 0             ; struct sigaction { SIG_IGN, flags 0, restorer 0, mask 0 }
 */
const KEEPALIVE_AMD64_CODE = Buffer.from(
  '41bc010000004489e7488d352800000031d241ba08000000b80d0000000f0541ffc44183fc4175deb8220000000f05ebf70f1f8000000000' +
    '0100000000000000000000000000000000000000000000000000000000000000',
  'hex',
);

const LOAD_ADDRESS = 0x400000n;
const ELF_HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;

/** A static ELF64 executable of `code` for `machine` (one read+execute segment, entry at the code). */
export function staticElf(code: Buffer, machine: number): Buffer {
  const headers = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE;
  const file = Buffer.alloc(headers + code.length);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0); // magic, 64-bit, little-endian, version 1, System V
  file.writeUInt16LE(2, 16); // ET_EXEC
  file.writeUInt16LE(machine, 18);
  file.writeUInt32LE(1, 20);
  file.writeBigUInt64LE(LOAD_ADDRESS + BigInt(headers), 24); // entry
  file.writeBigUInt64LE(BigInt(ELF_HEADER_SIZE), 32); // program headers right after this header
  file.writeUInt16LE(ELF_HEADER_SIZE, 52);
  file.writeUInt16LE(PROGRAM_HEADER_SIZE, 54);
  file.writeUInt16LE(1, 56);
  const ph = ELF_HEADER_SIZE;
  file.writeUInt32LE(1, ph); // PT_LOAD
  file.writeUInt32LE(5, ph + 4); // R + X
  file.writeBigUInt64LE(0n, ph + 8);
  file.writeBigUInt64LE(LOAD_ADDRESS, ph + 16);
  file.writeBigUInt64LE(LOAD_ADDRESS, ph + 24);
  file.writeBigUInt64LE(BigInt(file.length), ph + 32);
  file.writeBigUInt64LE(BigInt(file.length), ph + 40);
  file.writeBigUInt64LE(0x1000n, ph + 48);
  code.copy(file, headers);
  return file;
}

/** The keep-alive program for an image's architecture; only amd64 for now. */
export function keepAliveProgram(architecture: string, reference: string): Buffer {
  if (architecture === 'amd64') return staticElf(KEEPALIVE_AMD64_CODE, 0x3e);
  throw new SandboxError(
    'no-shell',
    `Image ${reference} has no /bin/sh, and a box on a shell-less image is supported on amd64 only for now (this image is ${architecture}). Use a variant of the image with a shell (for Docker Hardened Images, the -dev tag) in agentSandbox.image.`,
    { setting: 'agentSandbox.image' },
  );
}

/** What the helper puts at `/` with the tools volume mounted at `TOOLS_DIR`: the keep-alive, owned by root, 0555. */
export function toolsEntries(program: Buffer): { header: Partial<tarStream.Header> & { name: string }; content?: Buffer }[] {
  const dir = TOOLS_DIR.slice(1);
  return [
    { header: { name: `${dir}/`, type: 'directory', mode: 0o555, uid: 0, gid: 0, mtime: new Date() } },
    { header: { name: `${dir}/keepalive`, type: 'file', mode: 0o555, uid: 0, gid: 0, mtime: new Date() }, content: program },
  ];
}

/** The error for anything that needs a shell in a box whose image has none: what failed, why, what to do. */
export function noShellError(reference: string, what: string): SandboxError {
  return new SandboxError(
    'no-shell',
    `The box's image ${reference} has no shell (/bin/sh), so ${what} cannot run in it. Run a single program in argv form (e.g. the run's "argv": ["node", "test.js"]), or use a variant of the image with a shell (for Docker Hardened Images, the -dev tag) in agentSandbox.image.`,
    { setting: 'agentSandbox.image' },
  );
}
