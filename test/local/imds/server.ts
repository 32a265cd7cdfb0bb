// The mock IMDS's HTTP side: binds 127.0.0.1, applies the transport-level modes ("refuse", "hang") and logs every
// request; what to answer is decided in routes.ts.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { routeImdsRequest, TOKEN_HEADER, type ImdsReply, type ImdsState } from "./routes.js";
import { CredentialRotation, DEFAULT_REFRESH_BEFORE_EXPIRY_SECONDS, MIN_REMAINING_SECONDS, TokenStore } from "./state.js";
import type { ImdsMode, ImdsRequestLogEntry, MockImds, MockImdsOptions } from "./types.js";

// Enough for any test or local run; bounded so a long `npm run local` cannot grow without limit.
const MAX_LOGGED_REQUESTS = 10_000;

function checkOptions(options: MockImdsOptions): number {
  const refresh = options.refreshBeforeExpirySeconds ?? DEFAULT_REFRESH_BEFORE_EXPIRY_SECONDS;
  if (!Number.isFinite(refresh) || refresh < MIN_REMAINING_SECONDS) {
    throw new RangeError(
      `refreshBeforeExpirySeconds must be at least ${MIN_REMAINING_SECONDS} (IMDS never serves credentials with less left), got ${refresh}`,
    );
  }
  for (const field of ["instanceId", "accountId", "region", "availabilityZone"] as const) {
    if (!options[field]) throw new TypeError(`startMockImds: ${field} is required`);
  }
  if (options.roleName === "") throw new TypeError("startMockImds: roleName must be a name or null");
  return refresh;
}

export async function startMockImds(options: MockImdsOptions): Promise<MockImds> {
  const refreshSeconds = checkOptions(options);
  const now = options.now ?? Date.now;
  let mode: ImdsMode = "normal";
  const state: Omit<ImdsState, "mode"> = {
    instanceId: options.instanceId,
    accountId: options.accountId,
    region: options.region,
    availabilityZone: options.availabilityZone,
    roleName: options.roleName,
    credentialsAnswer: "valid",
    startedAt: now(),
    tokens: new TokenStore(),
    credentials: new CredentialRotation(options.issueCredentials, refreshSeconds * 1000),
  };
  const requests: ImdsRequestLogEntry[] = [];
  const sockets = new Set<Socket>();

  const record = (request: IncomingMessage, status: number): void => {
    const entry: ImdsRequestLogEntry = {
      method: request.method ?? "",
      path: request.url ?? "",
      status,
      tokenPresent: request.headers[TOKEN_HEADER] !== undefined,
    };
    requests.push(entry);
    if (requests.length > MAX_LOGGED_REQUESTS) requests.shift();
    options.log?.(entry);
  };

  const answer = (request: IncomingMessage, response: ServerResponse, routerMode: ImdsState["mode"]): void => {
    let result: ImdsReply;
    try {
      result = routeImdsRequest(
        { method: request.method ?? "", url: request.url ?? "/", headers: request.headers },
        { ...state, mode: routerMode },
        now(),
      );
    } catch (error) {
      // A stand-in bug (e.g. the issuer's credentials expire too soon): make it visible, never serve around it.
      result = { status: 500, body: `mock IMDS error: ${error instanceof Error ? error.message : String(error)}` };
    }
    const body = Buffer.from(result.body, "utf8");
    response.writeHead(result.status, {
      "content-type": "text/plain",
      "content-length": String(body.length),
      server: "EC2ws",
      ...result.headers,
    });
    response.end(request.method === "HEAD" ? undefined : body);
    record(request, result.status);
  };

  const server = createServer((request, response) => {
    const current = mode;
    if (current === "refuse") {
      // Normally refused at connect; this catches a request on a connection opened before the switch.
      request.socket.destroy();
      return;
    }
    if (current === "hang") {
      // Read the request and never answer; close() (or the client's timeout) ends it.
      request.resume();
      record(request, 0);
      return;
    }
    request.resume();
    answer(request, response, current);
  });
  // A hanging request must stay unanswered until the client gives up, not until Node's own 5-minute limit.
  server.requestTimeout = 0;
  server.on("connection", (socket: Socket) => {
    if (mode === "refuse") {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const destroyAll = (): void => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  return {
    url: `http://127.0.0.1:${port}/`,
    get requests() {
      return requests;
    },
    setMode(next: ImdsMode) {
      mode = next;
      // Kept-alive connections would otherwise still reach a "refused" service.
      if (next === "refuse") destroyAll();
    },
    setRole(roleName: string | null) {
      if (roleName === "") throw new TypeError("setRole: roleName must be a name or null");
      state.roleName = roleName;
    },
    setInstanceId(id: string) {
      if (!id) throw new TypeError("setInstanceId: id is required");
      state.instanceId = id;
    },
    setCredentialsAnswer(answer) {
      state.credentialsAnswer = answer;
    },
    rotateNow() {
      state.credentials.rotateNow();
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        destroyAll();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
