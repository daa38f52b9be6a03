// Shared page state, element handles and settings keys: the one place every view reads from.

import { $ } from "./dom.js";

export const PAGE = 60;
export const KEY_STORE = "imgfind.apiKey";
export const K_STORE = "imgfind.k";
export const COLLECTION_STORE = "imgfind.collection";

export const OPS = [
  { op: "$eq", label: "=" },
  { op: "$ne", label: "≠" },
  { op: "$gt", label: ">" },
  { op: "$gte", label: "≥" },
  { op: "$lt", label: "<" },
  { op: "$lte", label: "≤" },
  { op: "$contains", label: "contains" },
  { op: "$exists", label: "exists" },
];


export const ui = {
  collection: $("#collection"),
  count: $("#collection-count"),
  form: $("#search-form"),
  q: $("#q"),
  k: $("#k"),
  searchBtn: $("#search-btn"),
  searchFile: $("#search-file"),
  filters: $("#filters"),
  addFilter: $("#add-filter"),
  clearFilters: $("#clear-filters"),
  chip: $("#query-chip"),
  status: $("#status"),
  banner: $("#banner"),
  gallery: $("#gallery"),
  empty: $("#empty"),
  loadMore: $("#load-more"),
  overlay: $("#drop-overlay"),
  itemView: $("#item-view"),
  uploadView: $("#upload-view"),
  settingsView: $("#settings-view"),
  confirmView: $("#confirm-view"),
  toasts: $("#toasts"),
};

export const state = {
  collections: [],
  collection: null,
  count: 0,
  fields: [],
  filters: [],          // [{key, op, value}]
  query: null,          // null (browse) | {kind: "text", text} | {kind: "image", file, url} | {kind: "like", id, name}
  results: [],          // [{item, score?}]
  total: 0,
  seq: 0,               // request counter: responses of superseded requests are dropped
  current: -1,          // index in results of the item shown in the item view
  uploads: [],          // [{file, row, state}]
};
