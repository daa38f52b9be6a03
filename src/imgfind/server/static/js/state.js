// Shared page state, element handles and settings keys: the one place every view reads from.

import { $ } from "./dom.js";

export const PAGE = 60;
export const KEY_STORE = "imgfind.apiKey";
export const K_STORE = "imgfind.k";
export const COLLECTION_STORE = "imgfind.collection";


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
  chips: $("#example-chips"),
  sort: $("#sort"),
  minScore: $("#min-score"),
  groupBy: $("#group-by"),
  jump: $("#jump"),
  newer: $("#newer"),
  selBar: $("#selection-bar"),
  editView: $("#edit-view"),
  createView: $("#create-view"),
  indexView: $("#index-view"),
  reembedView: $("#reembed-view"),
  dupList: $("#dup-list"),
  dupStatus: $("#dup-status"),
  dupThreshold: $("#dup-threshold"),
  dupResolveAll: $("#dup-resolve-all"),
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
  view: "gallery",      // "gallery" | "duplicates"
  collection: null,
  count: 0,
  fields: [],
  filters: [],          // [{key, op, value}]
  query: null,          // null (browse) | {kind: "text", text} | {kind: "image", file, url} | {kind: "like", id, name}
  pos: [],              // "more like this" examples: [{id, name}]
  neg: [],              // "less like this" examples: [{id, name}]
  sort: "",             // "" = the default: best match for searches, newest taken first for browsing
  minScore: null,       // searches drop hits scoring below this (null: no threshold)
  exhausted: false,     // no more hits or items after the loaded ones
  offset: 0,            // listing offset of results[0] (after a jump to a date)
  results: [],          // [{item, score?}]
  total: 0,
  seq: 0,               // request counter: responses of superseded requests are dropped
  current: -1,          // index in results of the item shown in the item view
  item: null,           // the item shown in the item view (also when it is not in results)
  selected: new Set(),  // ids of selected cards
  anchor: -1,           // index of the last card clicked, for shift-click ranges
  uploads: [],          // [{file, row, state}]
  loading: false,       // a query is in flight
};
