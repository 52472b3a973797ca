// Real browser-side GraphQL clients against a running Parley server, in Node:
// graphql-ws (the protocol library under Apollo's GraphQLWsLink and urql's
// subscriptionExchange), Apollo Client and urql. Usage: node clients.mjs <base-url>
// Prints one JSON line of results; exits non-zero on any failure.
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { ApolloClient, HttpLink, InMemoryCache, split, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { Client as UrqlClient, fetchExchange, subscriptionExchange } from "@urql/core";

const base = process.argv[2];
const wsUrl = base.replace("http://", "ws://") + "/graphql";

async function post(query, variables, token) {
  const response = await fetch(base + "/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const REGISTER = `mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }`;
const GROUP = `mutation($input: CreateGroupInput!) { createGroup(input: $input) { id lastSeq } }`;
const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;
const EVENTS = `subscription($id: ID!, $after: Int) {
  conversationEvents(conversationId: $id, afterSeq: $after) {
    __typename seq ... on MessageAdded { message { id body author { username } } }
  }
}`;

function unique(prefix) {
  return prefix + Math.random().toString(36).slice(2, 10);
}

async function signUp() {
  const username = unique("js");
  const data = await post(REGISTER, { input: { username, password: "correct horse battery" } });
  return { username, token: data.register.accessToken, id: data.register.user.id };
}

function within(ms, promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms)),
  ]);
}

async function collect(count, start, what) {
  // start(onEvent) subscribes and returns a stop function
  const events = [];
  let stop = () => {};
  const done = new Promise((resolve, reject) => {
    stop = start((event) => {
      events.push(event);
      if (events.length === count) resolve(events);
    }, reject);
  });
  try {
    return await within(15000, done, what);
  } finally {
    stop();
  }
}

async function main() {
  const ann = await signUp();
  const bob = await signUp();
  const results = {};

  // 1. graphql-ws directly, with async connectionParams as apps write them
  {
    const group = (await post(GROUP, { input: { title: "ws", memberIds: [bob.id] } }, ann.token)).createGroup;
    const client = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: async () => ({ authorization: `Bearer ${bob.token}` }),
      keepAlive: 10000,
    });
    const events = collect(3, (onEvent, onError) =>
      client.subscribe(
        { query: EVENTS, variables: { id: group.id, after: group.lastSeq } },
        { next: (r) => (r.errors ? onError(new Error(JSON.stringify(r.errors))) : onEvent(r.data.conversationEvents)), error: onError, complete: () => {} },
      ),
    "graphql-ws");
    for (const n of [0, 1, 2]) await post(SEND, { input: { conversationId: group.id, body: `ws ${n}` } }, ann.token);
    const got = await events;
    await client.dispose();
    results.graphqlWs = got.map((e) => [e.seq - group.lastSeq, e.message.body]);
  }

  // 2. Apollo Client: HTTP for queries and mutations, GraphQLWsLink for subscriptions
  {
    const group = (await post(GROUP, { input: { title: "apollo", memberIds: [bob.id] } }, ann.token)).createGroup;
    const wsClient = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: async () => ({ authorization: `Bearer ${bob.token}` }) });
    const link = split(
      ({ query }) => {
        const definition = getMainDefinition(query);
        return definition.kind === "OperationDefinition" && definition.operation === "subscription";
      },
      new GraphQLWsLink(wsClient),
      new HttpLink({ uri: base + "/graphql", headers: { authorization: `Bearer ${ann.token}` } }),
    );
    const apollo = new ApolloClient({ link, cache: new InMemoryCache() });
    const events = collect(2, (onEvent, onError) => {
      const subscription = apollo
        .subscribe({ query: gql(EVENTS), variables: { id: group.id, after: group.lastSeq } })
        .subscribe({ next: (r) => (r.error ? onError(r.error) : onEvent(r.data.conversationEvents)), error: onError });
      return () => subscription.unsubscribe();
    }, "apollo");
    for (const n of [0, 1]) await apollo.mutate({ mutation: gql(SEND), variables: { input: { conversationId: group.id, body: `apollo ${n}` } } });
    const got = await events;
    await wsClient.dispose();
    apollo.stop();
    results.apollo = got.map((e) => [e.__typename, e.seq - group.lastSeq, e.message.body]);
  }

  // 3. urql with subscriptionExchange over graphql-ws
  {
    const group = (await post(GROUP, { input: { title: "urql", memberIds: [bob.id] } }, ann.token)).createGroup;
    const wsClient = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: async () => ({ authorization: `Bearer ${bob.token}` }) });
    const urql = new UrqlClient({
      url: base + "/graphql",
      exchanges: [
        fetchExchange,
        subscriptionExchange({
          forwardSubscription(request) {
            const input = { ...request, query: request.query || "" };
            return { subscribe: (sink) => ({ unsubscribe: wsClient.subscribe(input, sink) }) };
          },
        }),
      ],
    });
    const events = collect(2, (onEvent, onError) => {
      const { unsubscribe } = urql
        .subscription(EVENTS, { id: group.id, after: group.lastSeq })
        .subscribe((r) => (r.error ? onError(r.error) : onEvent(r.data.conversationEvents)));
      return unsubscribe;
    }, "urql");
    for (const n of [0, 1]) await post(SEND, { input: { conversationId: group.id, body: `urql ${n}` } }, ann.token);
    const got = await events;
    await wsClient.dispose();
    results.urql = got.map((e) => [e.seq - group.lastSeq, e.message.body]);
  }

  // 4. a bad token: graphql-ws reports the 4403 close to the app
  {
    const client = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: "Bearer not-a-token" },
      retryAttempts: 0,
    });
    const code = await within(10000, new Promise((resolve) => {
      client.on("closed", (event) => resolve(event.code));
      client.subscribe({ query: "subscription { viewerEvents { conversationId } }" }, { next() {}, error() {}, complete() {} });
    }), "bad token");
    await client.dispose();
    results.badTokenClose = code;
  }

  console.log(JSON.stringify(results));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
